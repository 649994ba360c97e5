"""Pure renderers: a tenant's resources in, the Kubernetes objects that run it out.

``render_tenant`` is what ``callmesh render`` prints and what the operator applies. Every
builder takes typed inputs and returns a plain dict; nothing here talks to the API server.
Generated Secrets (the ESL password, one SIP password per agent) are rendered separately by
``generated_secrets``, because their values are created once and never rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from callmesh.operator import freeswitch as fs
from callmesh.operator.labels import (
    CONFIG_HASH,
    TENANT_LABEL,
    child_name,
    content_hash,
    dns_label,
    metadata_for,
    selector_labels,
)

from callmesh import __version__
from callmesh.api import GROUP, ContactCenter, Resource, Tenant
from callmesh.api.contactcenter import ExposureMode, ResourceRequirements, WorkerSpec

GRPC_PORT = 50051
FREESWITCH = "freeswitch"
CONFIG_DIR = "/etc/freeswitch"
RECORDINGS_DIR = "/var/lib/freeswitch/recordings"


@dataclass(frozen=True)
class RenderOptions:
    """Settings of the operator installation (from its Helm values), not of a tenant."""

    worker_image: str = f"ghcr.io/callmesh/callmesh:{__version__}"
    cluster_domain: str = "cluster.local"
    external_address: str | None = None
    """The SIP Service's load-balancer address, once the cloud has assigned one."""
    api_server_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    """Where the Kubernetes API server's endpoints are, for the NetworkPolicies of the
    workers that write status (router, dialer). A NetworkPolicy sees the API server's
    endpoint addresses (after the ``kubernetes`` Service is resolved), so narrow this to
    the control plane's addresses where they are known."""
    api_server_ports: tuple[int, ...] = (443, 6443)
    """TCP ports of the API server's endpoints (443 on most managed clusters, 6443 kubeadm)."""


@dataclass(frozen=True)
class Role:
    """A worker role: the kinds it loads, the port it serves and how its health is probed.

    ``port`` is what ``callmesh worker <role> --port`` listens on (the router's gRPC API, the
    callcontrol outbound-socket server); a role without one (the dialer) only makes
    connections, so it gets no Service and no probe.

    ``status_of`` lists the callmesh resources whose ``status`` the role patches with live
    figures (get and patch on ``<plural>/status`` in its own namespace, nothing else); a role
    with none gets no Role, and its pods no API token at all.
    """

    name: str
    kinds: tuple[str, ...]
    port: tuple[str, int] | None = None
    probe: str | None = None  # "grpc" (health service) or "tcp" (the port accepts connections)
    status_of: tuple[str, ...] = ()


ROUTER = Role(
    "router",
    ("ContactCenter", "Queue", "AgentTeam"),
    ("grpc", GRPC_PORT),
    "grpc",
    status_of=("queues", "agentteams"),
)
CALLCONTROL = Role(
    "callcontrol",
    ("ContactCenter", "Queue", "AgentTeam", "IVRFlow"),
    ("esl-outbound", fs.CALLCONTROL_ESL_PORT),
    "tcp",
)
DIALER = Role(
    "dialer", ("ContactCenter", "Queue", "DialerCampaign"), status_of=("dialercampaigns",)
)
#: Where the dialer finds each campaign's lists: <LISTS_DIR>/<ConfigMap or Secret name>/<key>.
LISTS_DIR = "/etc/callmesh/lists"
#: Worker state that must outlive a container restart (interaction records, dial audit). The
#: dialer's lives on a PersistentVolumeClaim (see ``build_dialer_state_claim``), so it also
#: outlives a deleted or rescheduled pod; the other roles' on an emptyDir.
STATE_DIR = "/var/lib/callmesh"
#: Suffix of the dialer's state PersistentVolumeClaim: ``<center>-dialer-state``.
DIALER_STATE = "dialer-state"
#: Plugin Secrets: PLUGIN_SECRETS_DIR/<plugin name>/<key>.
PLUGIN_SECRETS_DIR = "/var/run/secrets/callmesh/plugins"


def roles_for(tenant: Tenant) -> list[Role]:
    """The worker roles a tenant needs: the dialer only when it has campaigns."""
    roles = [ROUTER, CALLCONTROL]
    if tenant.campaigns:
        roles.append(DIALER)
    return roles


def _center(tenant: Tenant) -> ContactCenter:
    if tenant.center is None:
        raise ValueError(
            f"namespace {tenant.namespace}: no ContactCenter — create one before its queues and teams"
        )
    return tenant.center


def _resources(req: ResourceRequirements) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for section, cpu, memory in (
        ("requests", req.cpu_request, req.memory_request),
        ("limits", req.cpu_limit, req.memory_limit),
    ):
        values = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        if values:
            out[section] = values
    return out


def _service_host(center: ContactCenter, role: str, options: RenderOptions) -> str:
    return f"{child_name(center, role)}.{center.namespace}.svc.{options.cluster_domain}"


# --- data the workers load -----------------------------------------------------------------

#: libyaml's emitter when PyYAML was built with it (ten times faster), else the pure one.
_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def object_document(obj: Resource) -> str:
    """One resource as a YAML document: its spec, name and namespace (no status)."""
    manifest = obj.to_manifest()
    manifest.pop("status", None)
    meta = manifest.get("metadata", {})
    manifest["metadata"] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    text: str = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False)
    return text


def tenant_document(objects: Iterable[Resource], texts: Mapping[int, str] | None = None) -> str:
    """Multi-document YAML of resources' specs (status and server fields dropped).

    ``texts`` may hold each object's document already (by ``id``), so that rendering
    several roles' ConfigMaps dumps each resource once.
    """
    return "---\n".join((texts or {}).get(id(obj)) or object_document(obj) for obj in objects)


def build_worker_configmap(
    tenant: Tenant, role: Role, texts: Mapping[int, str] | None = None
) -> dict[str, Any]:
    """The ConfigMap a worker role loads: the tenant's resources of the kinds it needs."""
    center = _center(tenant)
    objects = [obj for obj in tenant.objects() if obj.kind_name in role.kinds]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata_for(center, child_name(center, role.name), role.name),
        "data": {"tenant.yaml": tenant_document(objects, texts)},
    }


# --- FreeSWITCH ----------------------------------------------------------------------------


def build_freeswitch_configmap(tenant: Tenant, options: RenderOptions) -> dict[str, Any]:
    """The switch's XML configuration (no secrets: they come from the environment)."""
    center = _center(tenant)
    ctx = fs.SwitchContext(
        callcontrol_host=_service_host(center, CALLCONTROL.name, options),
        external_address=options.external_address
        or center.spec.freeswitch.exposure.external_address,
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata_for(center, child_name(center, FREESWITCH), FREESWITCH),
        "data": fs.render_config(tenant, ctx),
    }


def _secret_env(tenant: Tenant) -> list[dict[str, Any]]:
    return [
        {
            "name": var.env,
            "valueFrom": {"secretKeyRef": {"name": var.secret_name, "key": var.secret_key}},
        }
        for var in fs.secret_vars(tenant)
    ]


def _sip_ports(center: ContactCenter) -> list[tuple[str, int, str]]:
    sw = center.spec.freeswitch
    return [
        ("sip-int-udp", sw.sip_port, "UDP"),
        ("sip-int-tcp", sw.sip_port, "TCP"),
        ("sip-ext-udp", sw.external_sip_port, "UDP"),
        ("sip-ext-tcp", sw.external_sip_port, "TCP"),
    ]


def build_freeswitch_statefulset(tenant: Tenant, configmap: dict[str, Any]) -> dict[str, Any]:
    """The switch: FreeSWITCH pods with the generated config, secrets as env, recordings volume."""
    center = _center(tenant)
    sw = center.spec.freeswitch
    host_network = sw.exposure.mode is ExposureMode.host_network
    name = child_name(center, FREESWITCH)
    selector = selector_labels(center, FREESWITCH)
    ports = [{"name": "esl", "containerPort": fs.ESL_PORT, "protocol": "TCP"}]
    ports += [
        {"name": n, "containerPort": p, "protocol": proto} for n, p, proto in _sip_ports(center)
    ]
    affinity_term = {
        "labelSelector": {"matchLabels": selector},
        "topologyKey": "kubernetes.io/hostname",
    }
    if host_network:  # two switches on one node would fight over the SIP and RTP ports
        anti_affinity: dict[str, Any] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [affinity_term]
        }
    else:
        anti_affinity = {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": affinity_term}
            ]
        }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": child_name(center, FREESWITCH),
        "automountServiceAccountToken": False,
        "hostNetwork": host_network,
        "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
        "affinity": {"podAntiAffinity": anti_affinity},
        "terminationGracePeriodSeconds": 120,
        "containers": [
            {
                "name": FREESWITCH,
                "image": sw.image,
                "args": ["-nonat", "-nf", "-conf", CONFIG_DIR, "-log", "/var/log/freeswitch"],
                "ports": ports,
                "env": _secret_env(tenant),
                "resources": _resources(sw.resources),
                "readinessProbe": {
                    "tcpSocket": {"port": "esl"},
                    "periodSeconds": 5,
                    "failureThreshold": 3,
                },
                "livenessProbe": {
                    "tcpSocket": {"port": "esl"},
                    "initialDelaySeconds": 20,
                    "periodSeconds": 10,
                    "failureThreshold": 6,
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                    {"name": "recordings", "mountPath": RECORDINGS_DIR},
                ],
                "securityContext": {"allowPrivilegeEscalation": False},
            }
        ],
        "volumes": [
            {
                "name": "config",
                "configMap": {
                    "name": configmap["metadata"]["name"],
                    "items": [{"key": k, "path": p} for k, p in fs.CONFIG_PATHS.items()],
                },
            }
        ],
    }
    recording = center.spec.recording
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": recording.storage_size}},
    }
    if recording.storage_class:
        claim_spec["storageClassName"] = recording.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata_for(center, name, FREESWITCH),
        "spec": {
            "serviceName": name,
            "replicas": sw.replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": metadata_for(center, name, FREESWITCH)["labels"],
                    "annotations": {CONFIG_HASH: content_hash(configmap["data"])},
                },
                "spec": pod_spec,
            },
            "volumeClaimTemplates": [{"metadata": {"name": "recordings"}, "spec": claim_spec}],
        },
    }


def build_freeswitch_services(tenant: Tenant) -> list[dict[str, Any]]:
    """The headless Service (ESL, per-pod DNS) and, with loadBalancer exposure, the SIP Service."""
    center = _center(tenant)
    sw = center.spec.freeswitch
    selector = selector_labels(center, FREESWITCH)
    services: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata_for(center, child_name(center, FREESWITCH), FREESWITCH),
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": selector,
                "ports": [
                    {
                        "name": "esl",
                        "port": fs.ESL_PORT,
                        "targetPort": fs.ESL_PORT,
                        "protocol": "TCP",
                    }
                ],
            },
        }
    ]
    if sw.exposure.mode is ExposureMode.load_balancer:
        ports = [
            {"name": n, "port": p, "targetPort": p, "protocol": proto}
            for n, p, proto in _sip_ports(center)
        ]
        ports += [
            {"name": f"rtp-{port}", "port": port, "targetPort": port, "protocol": "UDP"}
            for port in range(sw.rtp_ports.start, sw.rtp_ports.end + 1)
        ]
        spec: dict[str, Any] = {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "sessionAffinity": "ClientIP",
            "selector": selector,
            "ports": ports,
        }
        if sw.exposure.load_balancer_class:
            spec["loadBalancerClass"] = sw.exposure.load_balancer_class
        services.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata_for(
                    center,
                    child_name(center, "sip"),
                    FREESWITCH,
                    dict(sw.exposure.service_annotations),
                ),
                "spec": spec,
            }
        )
    return services


def build_freeswitch_pdb(tenant: Tenant) -> dict[str, Any]:
    """At most one switch pod down at a time for voluntary disruptions (drains, upgrades)."""
    center = _center(tenant)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata_for(center, child_name(center, FREESWITCH), FREESWITCH),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(center, FREESWITCH)},
        },
    }


# --- workers -------------------------------------------------------------------------------


def _worker_spec(center: ContactCenter, role: Role) -> WorkerSpec:
    spec: WorkerSpec = getattr(center.spec.workers, role.name)
    return spec


def _probe(role: Role, initial_delay: int) -> dict[str, Any] | None:
    if role.port is None or role.probe is None:
        return None
    name, port = role.port
    check: dict[str, Any] = (
        {"grpc": {"port": port}} if role.probe == "grpc" else {"tcpSocket": {"port": name}}
    )
    return {
        **check,
        "initialDelaySeconds": initial_delay,
        "periodSeconds": 10 if initial_delay else 5,
    }


def _list_volumes(tenant: Tenant) -> list[tuple[dict[str, Any], str]]:
    """(volume, folder under LISTS_DIR) for each ConfigMap and Secret holding the lists."""
    volumes: dict[str, tuple[dict[str, Any], str]] = {}
    for campaign in tenant.campaigns.values():
        spec = campaign.spec
        refs: list[tuple[str, str]] = [("configMap", ref.name) for ref in spec.do_not_call]
        if spec.contact_list.config_map is not None:
            refs.append(("configMap", spec.contact_list.config_map.name))
        if spec.contact_list.secret is not None:
            refs.append(("secret", spec.contact_list.secret.name))
        for kind, name in refs:
            source = {"name": name} if kind == "configMap" else {"secretName": name}
            volumes[f"{kind}-{name}"] = (
                {"name": dns_label(f"list-{kind}-{name}"), kind: source},
                name,
            )
    return [volumes[key] for key in sorted(volumes)]


def build_worker_deployment(
    tenant: Tenant, role: Role, configmap: dict[str, Any], options: RenderOptions
) -> dict[str, Any]:
    """A worker role's Deployment: the callmesh image running ``callmesh worker <role>``."""
    center = _center(tenant)
    name = child_name(center, role.name)
    worker = _worker_spec(center, role)
    env = [
        {"name": "CALLMESH_TENANT", "value": center.namespace},
        # where the worker patches live figures into status (its own namespace only)
        {
            "name": "CALLMESH_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {
            "name": "CALLMESH_ROUTER",
            "value": f"{_service_host(center, ROUTER.name, options)}:{GRPC_PORT}",
        },
        {"name": "CALLMESH_FREESWITCH", "value": f"{child_name(center, FREESWITCH)}:{fs.ESL_PORT}"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        # callcontrol tells FreeSWITCH where to hand parked calls back after a restart
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    if role is not ROUTER:  # they drive FreeSWITCH over ESL
        esl = fs.esl_secret(center)
        env.append(
            {
                "name": esl.env,
                "valueFrom": {"secretKeyRef": {"name": esl.secret_name, "key": esl.secret_key}},
            }
        )
    args = ["worker", role.name, "--config", "/etc/callmesh/tenant.yaml"]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": "/etc/callmesh", "readOnly": True},
        {"name": "state", "mountPath": STATE_DIR},
    ]
    state: dict[str, Any] = {"emptyDir": {}}
    if role is DIALER:
        # the dial audit journal rebuilds caps, retries, opt-outs and the day's abandon
        # meter: it must survive a rescheduled pod, not only a restarted container
        state = {"persistentVolumeClaim": {"claimName": child_name(center, DIALER_STATE)}}
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": configmap["metadata"]["name"]}},
        {"name": "state", **state},
    ]
    if role.port is not None:
        args += ["--port", str(role.port[1])]
    if role is CALLCONTROL:
        args += ["--interactions", f"{STATE_DIR}/interactions.jsonl"]
    if role is DIALER:
        args += ["--lists", LISTS_DIR, "--audit", f"{STATE_DIR}/dialer-audit.jsonl"]
        for volume, directory in _list_volumes(tenant):
            volumes.append(volume)
            mounts.append(
                {"name": volume["name"], "mountPath": f"{LISTS_DIR}/{directory}", "readOnly": True}
            )
    for plugin in center.spec.plugins:
        if plugin.enabled and plugin.secret:
            volume_name = dns_label(f"plugin-{plugin.name}")
            volumes.append({"name": volume_name, "secret": {"secretName": plugin.secret}})
            mounts.append(
                {
                    "name": volume_name,
                    "mountPath": f"{PLUGIN_SECRETS_DIR}/{plugin.name}",
                    "readOnly": True,
                }
            )
    container: dict[str, Any] = {
        "name": role.name,
        "image": options.worker_image,
        "args": args,
        "env": env,
        "resources": _resources(worker.resources),
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if role.port is not None:
        container["ports"] = [
            {"name": role.port[0], "containerPort": role.port[1], "protocol": "TCP"}
        ]
    readiness, liveness = _probe(role, 0), _probe(role, 10)
    if readiness and liveness:
        container["readinessProbe"] = readiness
        container["livenessProbe"] = liveness
    strategy: dict[str, Any]
    if role is ROUTER or role is DIALER:
        # One router owns the tenant's waiting contacts; two dialers would pace the same
        # campaigns and dial contacts twice, and the dialer's ReadWriteOnce state volume
        # mounts on one node only: never two at once, even in a rollout.
        replicas, strategy = min(worker.replicas, 1), {"type": "Recreate"}
    else:
        replicas = worker.replicas
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata_for(center, name, role.name),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(center, role.name)},
            "strategy": strategy,
            "template": {
                "metadata": {
                    "labels": metadata_for(center, name, role.name)["labels"],
                    "annotations": {CONFIG_HASH: content_hash(configmap["data"])},
                },
                "spec": {
                    "serviceAccountName": child_name(center, role.name),
                    # a token only for the roles that write status
                    "automountServiceAccountToken": bool(role.status_of),
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def build_dialer_state_claim(tenant: Tenant) -> dict[str, Any]:
    """The dialer's state volume: a ReadWriteOnce PersistentVolumeClaim for its audit journal.

    Created once and never patched (a claim's spec is immutable but for a size increase); it
    goes with the ContactCenter through its owner reference, and as a leftover when the tenant
    has no campaigns any more.
    """
    center = _center(tenant)
    dialer = center.spec.workers.dialer
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": dialer.state_storage_size}},
    }
    if dialer.state_storage_class is not None:
        spec["storageClassName"] = dialer.state_storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata_for(center, child_name(center, DIALER_STATE), DIALER.name),
        "spec": spec,
    }


def build_worker_service(tenant: Tenant, role: Role) -> dict[str, Any]:
    """The worker role's ClusterIP Service (roles that serve a port only)."""
    center = _center(tenant)
    if role.port is None:
        raise ValueError(f"the {role.name} role serves no port and has no Service")
    port_name, port = role.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata_for(center, child_name(center, role.name), role.name),
        "spec": {
            "selector": selector_labels(center, role.name),
            "ports": [
                {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
            ],
        },
    }


# --- tenancy: RBAC and network policy ------------------------------------------------------


def build_rbac(tenant: Tenant) -> list[dict[str, Any]]:
    """A ServiceAccount per component; a Role and RoleBinding for each role that writes status.

    Least privilege: the switch and callcontrol never call the API (no Role, no token); the
    router may get and patch ``queues/status`` and ``agentteams/status``, the dialer
    ``dialercampaigns/status``, in the tenant's namespace only.
    """
    center = _center(tenant)
    roles = roles_for(tenant)
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata_for(center, child_name(center, component), component),
            "automountServiceAccountToken": False,
        }
        for component in (FREESWITCH, *(r.name for r in roles))
    ]
    for role in roles:
        if not role.status_of:
            continue
        name = child_name(center, role.name)
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": metadata_for(center, name, role.name),
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "resources": [f"{plural}/status" for plural in role.status_of],
                        "verbs": ["get", "patch"],
                    }
                ],
            }
        )
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": metadata_for(center, name, role.name),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [
                    {"kind": "ServiceAccount", "name": name, "namespace": center.namespace}
                ],
            }
        )
    return out


def _peer(center: ContactCenter, component: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": selector_labels(center, component)}}


def _tcp(port: int | str) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


_DNS_EGRESS = {
    "to": [{"namespaceSelector": {}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def _api_server_egress(options: RenderOptions) -> dict[str, Any]:
    return {
        "to": [{"ipBlock": {"cidr": cidr}} for cidr in options.api_server_cidrs],
        "ports": [_tcp(port) for port in options.api_server_ports],
    }


def build_network_policies(
    tenant: Tenant, options: RenderOptions | None = None
) -> list[dict[str, Any]]:
    """Default deny for the tenant's pods, then only the paths the call flow needs.

    The router and the dialer may also reach the Kubernetes API server (where they write
    live figures into status): TCP ``options.api_server_ports`` to
    ``options.api_server_cidrs``.
    """
    options = options or RenderOptions()
    center = _center(tenant)
    sw = center.spec.freeswitch
    roles = {r.name for r in roles_for(tenant)}
    esl_clients = [_peer(center, r) for r in ("callcontrol", "dialer") if r in roles]
    grpc_clients = [_peer(center, r) for r in ("callcontrol", "dialer") if r in roles]

    def policy(name: str, component: str | None, spec: dict[str, Any]) -> dict[str, Any]:
        selector = (
            {"matchLabels": selector_labels(center, component)}
            if component
            else {"matchLabels": {TENANT_LABEL: center.name}}
        )
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata_for(center, child_name(center, name), component or "tenant"),
            "spec": {"podSelector": selector, **spec},
        }

    sip_ports = [{"protocol": proto, "port": port} for _, port, proto in _sip_ports(center)]
    rtp = {"protocol": "UDP", "port": sw.rtp_ports.start, "endPort": sw.rtp_ports.end}
    policies = [
        policy("default-deny", None, {"policyTypes": ["Ingress", "Egress"]}),
        policy(
            "freeswitch",
            FREESWITCH,
            {
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {"ports": [*sip_ports, rtp]},  # phones and trunks, from anywhere
                    {"from": esl_clients, "ports": [_tcp(fs.ESL_PORT)]},
                ],
                # trunks, phones' RTP and the callcontrol socket: the switch talks to the world
                "egress": [{}],
            },
        ),
        policy(
            "router",
            "router",
            {
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": grpc_clients, "ports": [_tcp(GRPC_PORT)]}],
                "egress": [_DNS_EGRESS, _api_server_egress(options)],
            },
        ),
        policy(
            "callcontrol",
            "callcontrol",
            {
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {"from": [_peer(center, FREESWITCH)], "ports": [_tcp(fs.CALLCONTROL_ESL_PORT)]}
                ],
                "egress": [
                    _DNS_EGRESS,
                    {"to": [_peer(center, FREESWITCH)], "ports": [_tcp(fs.ESL_PORT)]},
                    {"to": [_peer(center, "router")], "ports": [_tcp(GRPC_PORT)]},
                ],
            },
        ),
    ]
    if "dialer" in roles:
        policies.append(
            policy(
                "dialer",
                "dialer",
                {
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [],
                    "egress": [
                        _DNS_EGRESS,
                        {"to": [_peer(center, FREESWITCH)], "ports": [_tcp(fs.ESL_PORT)]},
                        {"to": [_peer(center, "router")], "ports": [_tcp(GRPC_PORT)]},
                        _api_server_egress(options),
                    ],
                },
            )
        )
    return policies


# --- secrets -------------------------------------------------------------------------------


def generated_secrets(
    tenant: Tenant, existing: set[str], new_password: Callable[[], str]
) -> list[dict[str, Any]]:
    """Secrets the operator generates (ESL password, one per agent) that do not exist yet.

    An existing Secret is never rewritten, so passwords stay stable across reconciles.
    Trunk credentials are the user's own Secrets and are only referenced.
    """
    center = _center(tenant)
    wanted = [fs.esl_secret(center)]
    wanted += [
        fs.agent_secret(center, agent_id, ext) for _, agent_id, _, ext in fs.all_agents(tenant)
    ]
    out = []
    for var in wanted:
        if var.secret_name in existing:
            continue
        component = FREESWITCH if var.variable == "esl_password" else "agent"
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": metadata_for(center, var.secret_name, component),
                "stringData": {var.secret_key: new_password()},
            }
        )
    return out


# --- everything ----------------------------------------------------------------------------


def render_tenant(tenant: Tenant, options: RenderOptions | None = None) -> list[dict[str, Any]]:
    """Every object (but generated Secrets) the operator keeps in the tenant's namespace."""
    options = options or RenderOptions()
    fs_config = build_freeswitch_configmap(tenant, options)
    objects: list[dict[str, Any]] = [*build_rbac(tenant), fs_config]
    objects.append(build_freeswitch_statefulset(tenant, fs_config))
    objects += build_freeswitch_services(tenant)
    objects.append(build_freeswitch_pdb(tenant))
    texts = {id(obj): object_document(obj) for obj in tenant.objects()}
    for role in roles_for(tenant):
        cm = build_worker_configmap(tenant, role, texts)
        if role is DIALER:
            objects.append(build_dialer_state_claim(tenant))
        objects += [cm, build_worker_deployment(tenant, role, cm, options)]
        if role.port is not None:
            objects.append(build_worker_service(tenant, role))
    objects += build_network_policies(tenant, options)
    return objects
