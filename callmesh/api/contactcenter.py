"""ContactCenter: one tenant's switch, numbers, trunks, recording, plugins and workers."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints

from callmesh.api.base import (
    E164,
    READY_COLUMN,
    Cidr,
    DateString,
    Identifier,
    Model,
    ObjectName,
    Quantity,
    Resource,
    SecretKeyRef,
    ShortText,
    Status,
    TimeOfDay,
    TimeZoneName,
    Weekday,
    list_map,
)


class ResourceRequirements(Model):
    """CPU and memory for a container, as Kubernetes quantities."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.cpuRequest) || !has(self.cpuLimit) || "
                    "quantity(self.cpuLimit).compareTo(quantity(self.cpuRequest)) >= 0",
                    "message": "cpuLimit is below cpuRequest — raise the limit or lower the request",
                    "fieldPath": ".cpuLimit",
                },
                {
                    "rule": "!has(self.memoryRequest) || !has(self.memoryLimit) || "
                    "quantity(self.memoryLimit).compareTo(quantity(self.memoryRequest)) >= 0",
                    "message": "memoryLimit is below memoryRequest — raise the limit or lower the request",
                    "fieldPath": ".memoryLimit",
                },
            ]
        }
    )

    cpu_request: Quantity | None = Field(default=None, description="Requested CPU, e.g. 500m.")
    memory_request: Quantity | None = Field(
        default=None, description="Requested memory, e.g. 512Mi."
    )
    cpu_limit: Quantity | None = Field(default=None, description="CPU limit, e.g. 2.")
    memory_limit: Quantity | None = Field(default=None, description="Memory limit, e.g. 1Gi.")


class ExposureMode(StrEnum):
    """How SIP signalling and RTP media reach phones and trunks outside the cluster."""

    host_network = "hostNetwork"
    load_balancer = "loadBalancer"


class RtpPortRange(Model):
    """The UDP ports FreeSWITCH uses for media."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.end > self.start",
                    "message": "the RTP range ends before it starts — set end above start",
                    "fieldPath": ".end",
                }
            ]
        }
    )

    start: int = Field(default=16384, ge=1024, le=65535, description="First RTP port.")
    end: int = Field(default=16483, ge=1024, le=65535, description="Last RTP port (inclusive).")


class Exposure(Model):
    """Where SIP and RTP are reachable from outside the cluster.

    ``hostNetwork`` binds FreeSWITCH to the node's address (one pod per node; simplest media
    path, no NAT). ``loadBalancer`` puts SIP and the RTP range behind a LoadBalancer Service and
    sets FreeSWITCH's ext-sip-ip/ext-rtp-ip to its address (needs a load balancer that forwards
    UDP port ranges; keep the range small).
    """

    mode: ExposureMode = Field(
        default=ExposureMode.host_network, description="hostNetwork or loadBalancer."
    )
    external_address: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None,
        description="Public IP or host name advertised in SIP/SDP; with loadBalancer, the Service's address when unset.",
    )
    load_balancer_class: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="spec.loadBalancerClass of the SIP Service (loadBalancer mode)."
    )
    service_annotations: Annotated[
        dict[str, Annotated[str, StringConstraints(max_length=1024)]], Field(max_length=64)
    ] = Field(
        default_factory=dict,
        description="Annotations for the SIP Service, e.g. for a cloud load balancer.",
    )


class FreeSwitchSpec(Model):
    """The tenant's FreeSWITCH StatefulSet."""

    image: Annotated[str, StringConstraints(min_length=1, max_length=512)] = Field(
        default="ghcr.io/callmesh/freeswitch:1.10.12",
        description="Container image with FreeSWITCH 1.10 and mod_sofia, mod_event_socket, mod_dptools.",
    )
    replicas: int = Field(default=1, ge=1, le=32, description="Number of FreeSWITCH pods.")
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements, description="CPU and memory of each FreeSWITCH pod."
    )
    sip_port: int = Field(
        default=5060, ge=1, le=65535, description="SIP port of the internal (agent) profile."
    )
    external_sip_port: int = Field(
        default=5080, ge=1, le=65535, description="SIP port of the external (trunk) profile."
    )
    rtp_ports: RtpPortRange = Field(
        default_factory=RtpPortRange, description="UDP port range for media."
    )
    exposure: Exposure = Field(
        default_factory=Exposure, description="How SIP and RTP are reached from outside."
    )


class Transport(StrEnum):
    """SIP transport."""

    udp = "udp"
    tcp = "tcp"
    tls = "tls"


class Trunk(Model):
    """A SIP trunk to a carrier, configured as a FreeSWITCH gateway on the external profile."""

    name: Identifier = Field(description="Gateway name, unique in the center.")
    host: Annotated[
        str,
        StringConstraints(
            min_length=1, max_length=253, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$"
        ),
    ] = Field(description="Carrier's SIP host name or IP address.")
    port: int = Field(default=5060, ge=1, le=65535, description="Carrier's SIP port.")
    transport: Transport = Field(default=Transport.udp, description="udp, tcp or tls.")
    register_: bool = Field(
        default=True, alias="register", description="Whether FreeSWITCH registers to the carrier."
    )
    username: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the SIP user name."
    )
    password: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the SIP password."
    )
    caller_id_number: E164 | None = Field(
        default=None, description="Caller ID presented on calls out of this trunk."
    )
    max_channels: int = Field(
        default=0, ge=0, le=100_000, description="Concurrent call limit; 0 means unlimited."
    )
    inbound_cidrs: Annotated[list[Cidr], Field(max_length=32)] = Field(
        default_factory=list,
        description=(
            "Addresses the carrier sends calls from, as CIDRs (e.g. 203.0.113.0/28). The external "
            "profile refuses calls from anywhere else; the host is allowed too when it is an IP."
        ),
    )


class NumberRoute(Model):
    """A phone number (DID) of the tenant and the IVR flow that answers it."""

    did: E164 = Field(description="The number in E.164 form, e.g. +14155550100.")
    flow: ObjectName = Field(description="Name of the IVRFlow that answers calls to this number.")
    description: ShortText = Field(default="", description="What the number is for.")


class RecordingPolicy(StrEnum):
    """Which calls are recorded."""

    none = "none"
    all = "all"
    per_queue = "perQueue"


class RecordingFormat(StrEnum):
    """File format of recordings."""

    wav = "wav"
    mp3 = "mp3"


class Recording(Model):
    """Call recording: which calls, where the files go, how long they are kept."""

    policy: RecordingPolicy = Field(
        default=RecordingPolicy.per_queue,
        description="none, all, or perQueue (each Queue's recordingPercent decides).",
    )
    format: RecordingFormat = Field(default=RecordingFormat.wav, description="wav or mp3.")
    storage_size: Quantity = Field(
        default="10Gi", description="Size of the PersistentVolumeClaim for recordings."
    )
    storage_class: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None,
        description="StorageClass of the recordings volume; the cluster default if unset.",
    )
    retention_days: int = Field(default=90, ge=1, le=3650, description="Days a recording is kept.")


class PluginRef(Model):
    """A plugin enabled for this tenant, with its configuration."""

    name: Identifier = Field(description="Plugin name as listed by `callmesh plugins list`.")
    enabled: bool = Field(
        default=True, description="Set false to keep the config but turn the plugin off."
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Plugin configuration, validated against the plugin's own model.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    secret: ObjectName | None = Field(
        default=None,
        description=(
            "A Secret mounted read-only into the worker pods at "
            "/var/run/secrets/callmesh/plugins/<name>/; point the plugin's *File settings at "
            "its keys (secrets never go into config, which lands in a ConfigMap)."
        ),
    )


class WorkerSpec(Model):
    """Replicas and resources of one worker role."""

    replicas: int = Field(default=1, ge=0, le=64, description="Number of pods of this role.")
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements, description="CPU and memory of each pod."
    )


class DialerWorkerSpec(WorkerSpec):
    """The dialer's pods, and the volume that keeps its compliance state across reschedules."""

    state_storage_size: Quantity = Field(
        default="1Gi",
        description=(
            "Size of the dialer's PersistentVolumeClaim (<center>-dialer-state) holding the dial "
            "audit journal, replayed at start to rebuild caps, retries, opt-outs and the "
            "day's abandon meter. Fixed at creation: a later change is not applied."
        ),
    )
    state_storage_class: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None,
        description="StorageClass of the dialer's state volume; the cluster default if unset.",
    )


class Workers(Model):
    """The gRPC worker Deployments of the tenant."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.router.replicas <= 1",
                    "message": (
                        "the router owns the tenant's waiting contacts and runs as one pod "
                        "(no standby election yet) — set workers.router.replicas to 1"
                    ),
                    "fieldPath": ".router.replicas",
                },
                {
                    "rule": "self.dialer.replicas <= 1",
                    "message": (
                        "two dialers would each pace the same campaigns and dial contacts "
                        "twice, and the dialer's state volume mounts on one node only "
                        "— set workers.dialer.replicas to 1 (or 0 to pause the dialer)"
                    ),
                    "fieldPath": ".dialer.replicas",
                },
            ]
        }
    )

    router: WorkerSpec = Field(
        default_factory=WorkerSpec,
        description="The ACD: one pod per tenant, restarted in place (callcontrol re-enqueues calls).",
    )
    callcontrol: WorkerSpec = Field(
        default_factory=WorkerSpec, description="ESL call control: IVR, queueing, bridging."
    )
    dialer: DialerWorkerSpec = Field(
        default_factory=DialerWorkerSpec,
        description=(
            "Outbound campaigns (deployed when there are any): one pod, its state on a "
            "PersistentVolumeClaim."
        ),
    )


class WeeklyHours(Model):
    """Opening hours on some days of the week."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.close > self.open",
                    "message": "closes before it opens — set close after open",
                    "fieldPath": ".close",
                }
            ]
        }
    )

    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)] = Field(
        description="Days these hours apply to."
    )
    open: TimeOfDay = Field(description="Opening time, HH:MM.")
    close: TimeOfDay = Field(description="Closing time, HH:MM (after open).")


class Holiday(Model):
    """A date on which the schedule is closed, or has special hours."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.open) == has(self.close)",
                    "message": "special hours need both open and close — set both, or neither for a day closed all day",
                    "fieldPath": ".close",
                },
                {
                    "rule": "!has(self.open) || !has(self.close) || self.close > self.open",
                    "message": "closes before it opens — set close after open",
                    "fieldPath": ".close",
                },
            ]
        }
    )

    date: DateString = Field(description="The date, YYYY-MM-DD.")
    name: ShortText = Field(default="", description="What the holiday is.")
    open: TimeOfDay | None = Field(
        default=None, description="Special opening time; closed all day if unset."
    )
    close: TimeOfDay | None = Field(default=None, description="Special closing time.")


class Schedule(Model):
    """Named business hours in the center's time zone, with holidays; IVR conditions refer to it."""

    name: Identifier = Field(description="Schedule name, e.g. business-hours.")
    time_zone: TimeZoneName | None = Field(
        default=None, description="IANA time zone; the center's timeZone if unset."
    )
    weekly: Annotated[list[WeeklyHours], Field(min_length=1, max_length=14)] = Field(
        description="Opening hours per day."
    )
    holidays: Annotated[list[Holiday], Field(max_length=366)] = Field(
        default_factory=list, description="Closed or special days."
    )


class ContactCenterSpec(Model):
    """Desired state of a tenant's contact center."""

    display_name: ShortText = Field(
        default="", description="Human name of the tenant, e.g. ACME Insurance."
    )
    sip_domain: Annotated[
        str,
        StringConstraints(
            min_length=1,
            max_length=253,
            pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$",
        ),
    ] = Field(description="The tenant's SIP domain; agents register as <extension>@<sipDomain>.")
    time_zone: TimeZoneName = Field(
        default="UTC", description="IANA time zone of the center, e.g. America/New_York."
    )
    freeswitch: FreeSwitchSpec = Field(
        default_factory=FreeSwitchSpec, description="The FreeSWITCH switch."
    )
    trunks: Annotated[list[Trunk], Field(max_length=32)] = Field(
        default_factory=list,
        json_schema_extra=list_map("name"),
        description="SIP trunks to carriers.",
    )
    numbers: Annotated[list[NumberRoute], Field(max_length=512)] = Field(
        default_factory=list,
        json_schema_extra=list_map("did"),
        description="DIDs and the IVR flow each is routed to.",
    )
    schedules: Annotated[list[Schedule], Field(max_length=32)] = Field(
        default_factory=list,
        json_schema_extra=list_map("name"),
        description="Named business hours with holidays, used by IVR conditions.",
    )
    recording: Recording = Field(
        default_factory=Recording, description="Call recording policy and storage."
    )
    plugins: Annotated[list[PluginRef], Field(max_length=64)] = Field(
        default_factory=list, description="Plugins enabled for this tenant, with their config."
    )
    workers: Workers = Field(default_factory=Workers, description="Worker Deployments.")


class ContactCenterStatus(Status):
    """Observed state of the center."""

    agents: int | None = Field(
        default=None, ge=0, description="Agents configured across the tenant's teams."
    )
    queues: int | None = Field(default=None, ge=0, description="Queues of the tenant.")


class ContactCenter(Resource):
    """A tenant's contact center: the switch, its numbers and trunks, and the workers around it."""

    kind_name: ClassVar[str] = "ContactCenter"
    plural: ClassVar[str] = "contactcenters"
    short_names: ClassVar[tuple[str, ...]] = ("cc",)
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = (
        {"name": "Domain", "type": "string", "jsonPath": ".spec.sipDomain"},
        {"name": "Queues", "type": "integer", "jsonPath": ".status.queues"},
        {"name": "Agents", "type": "integer", "jsonPath": ".status.agents"},
        READY_COLUMN,
    )

    kind: Literal["ContactCenter"] = Field(default="ContactCenter", description="ContactCenter.")
    spec: ContactCenterSpec = Field(description="Desired state.")
    status: ContactCenterStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
