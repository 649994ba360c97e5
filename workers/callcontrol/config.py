"""The callcontrol worker's configuration: the operator's rendered ``tenant.yaml``.

The operator mounts one multi-document YAML per worker (``/etc/callmesh/tenant.yaml``) with
the tenant's ContactCenter, Queues, AgentTeams and IVRFlows. :func:`load_config` checks every
object with the same per-object checks as ``callmesh validate`` and compiles each IVRFlow
**once** (:func:`callmesh.ivr.compile_flow`), so calls share the compiled graphs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from callmesh.api import AgentTeam, ContactCenter, IVRFlow, Queue
from callmesh.api.commands import read_documents
from callmesh.api.contactcenter import RecordingPolicy
from callmesh.api.validate import check
from callmesh.ivr import CompiledFlow, FlowError, compile_flow

__all__ = ["CallControlConfig", "CallControlConfigError", "QueueMedia", "load_config"]


class CallControlConfigError(ValueError):
    """The config cannot be used; the message names the file, object and field."""


@dataclass(frozen=True, slots=True)
class QueueMedia:
    """What a caller hears and what is recorded while in one queue.

    Attributes:
        hold_music: music-on-hold URI (``local_stream://moh``).
        greeting: file or text played once on entering the queue, or None.
        greeting_is_text: True when ``greeting`` is TTS text.
        announce_position: say the caller's place in the queue.
        announce_wait: say the estimated wait.
        interval: seconds between announcements.
        recording_percent: share of calls recorded (0-100) under the perQueue policy.
        offer_timeout: seconds an agent's phone rings before RONA.
    """

    hold_music: str = "local_stream://moh"
    greeting: str | None = None
    greeting_is_text: bool = False
    announce_position: bool = True
    announce_wait: bool = True
    interval: float = 60.0
    recording_percent: float = 0.0
    offer_timeout: float = 20.0


@dataclass(frozen=True)
class CallControlConfig:
    """Everything callcontrol needs from the tenant's manifests.

    Attributes:
        namespace: the tenant.
        sip_domain: the tenant's SIP domain (agents register as ``<ext>@<domain>``).
        flows: IVRFlow name -> compiled flow.
        numbers: DID -> IVRFlow name (for calls that arrive without ``callmesh_flow``).
        queues: queue name -> what callers hear there.
        extensions: agent id -> SIP extension.
        recording_policy: ``none``, ``all`` or ``perQueue``.
        recording_format: ``wav`` or ``mp3``.
        default_queue: where a call goes when its flow is missing or cannot start.
        plugins: the ContactCenter's ``spec.plugins`` (for the CRM hook).
        trunks: trunk names (the first places transfers to E.164 numbers).
        digest: SHA-256 of the file.
    """

    namespace: str
    sip_domain: str
    flows: dict[str, CompiledFlow]
    numbers: dict[str, str]
    queues: dict[str, QueueMedia]
    extensions: dict[str, str]
    recording_policy: str = RecordingPolicy.none.value
    recording_format: str = "wav"
    default_queue: str | None = None
    plugins: tuple[object, ...] = ()
    trunks: tuple[str, ...] = ()
    digest: str = ""
    languages: dict[str, str] = field(default_factory=dict)
    """IVRFlow name -> its language (for ``say``)."""


def _media(queue: Queue) -> QueueMedia:
    spec = queue.spec
    ann = spec.announcements
    greeting: str | None = None
    is_text = False
    if ann.greeting is not None:
        greeting = ann.greeting.file or ann.greeting.text
        is_text = ann.greeting.file is None
    return QueueMedia(
        hold_music=ann.hold_music,
        greeting=greeting,
        greeting_is_text=is_text,
        announce_position=ann.position,
        announce_wait=ann.estimated_wait,
        interval=float(ann.interval_seconds),
        recording_percent=float(spec.recording_percent),
        offer_timeout=float(spec.offer_timeout_seconds),
    )


def load_config(path: str | Path, *, default_queue: str | None = None) -> CallControlConfig:
    """Read, check and compile the tenant's ``tenant.yaml`` (or a folder of manifests).

    Args:
        path: the rendered file (``/etc/callmesh/tenant.yaml``) or a folder.
        default_queue: the safe default queue; None takes the first voice queue by name.

    Raises:
        CallControlConfigError: the file is missing or unreadable, an object is invalid, it
            holds several tenants or ContactCenters, a flow does not compile, or the default
            queue does not exist (each problem with its place and fix).
    """
    path = Path(path)
    if not path.exists():
        raise CallControlConfigError(
            f"{path}: no such file: pass --config the rendered tenant.yaml (the callcontrol"
            " ConfigMap, mounted at /etc/callmesh)"
        )
    digest = hashlib.sha256()
    try:
        files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.read_bytes())
    except OSError as exc:
        raise CallControlConfigError(f"{path}: cannot read the config: {exc}") from None
    docs, problems = read_documents([path])
    found, checked = check(docs)
    if problems or len(checked) != len(docs):
        listed = problems + found
        lines = "\n".join(p.format() for p in listed[:20]) or f"{path}: unreadable"
        raise CallControlConfigError(f"{path}: the callcontrol config has problems:\n{lines}")
    namespaces = sorted({c.obj.namespace for c in checked})
    if len(namespaces) > 1:
        raise CallControlConfigError(
            f"{path}: objects of several namespaces ({', '.join(namespaces)}): callcontrol"
            " serves one tenant; render one config per namespace"
        )
    center: ContactCenter | None = None
    queues: dict[str, Queue] = {}
    teams: list[AgentTeam] = []
    flows: list[IVRFlow] = []
    for c in checked:
        obj = c.obj
        if isinstance(obj, ContactCenter):
            if center is not None:
                raise CallControlConfigError(
                    f"{c.doc.file}:{c.doc.line}: a second ContactCenter ({obj.name}); a tenant"
                    " has one"
                )
            center = obj
        elif isinstance(obj, Queue):
            queues[obj.name] = obj
        elif isinstance(obj, AgentTeam):
            teams.append(obj)
        elif isinstance(obj, IVRFlow):
            flows.append(obj)
    if center is None:
        raise CallControlConfigError(
            f"{path}: no ContactCenter: callcontrol needs the tenant's sipDomain, numbers and"
            " schedules; render the config with the ContactCenter in it"
        )
    compiled: dict[str, CompiledFlow] = {}
    errors: list[str] = []
    for flow in flows:
        try:
            compiled[flow.name] = compile_flow(flow, center.spec.schedules, center.spec.time_zone)
        except FlowError as exc:
            errors.append(str(exc))
    if errors:
        raise CallControlConfigError(f"{path}: IVRFlows do not compile:\n" + "\n".join(errors))
    voice = sorted(n for n, q in queues.items() if q.spec.channel.value == "voice")
    if default_queue is not None and default_queue not in queues:
        raise CallControlConfigError(
            f"default queue {default_queue!r} is not a Queue of {center.namespace}: use one"
            f" of {voice}"
        )
    extensions = {a.id: a.extension for t in teams for a in t.spec.agents}
    return CallControlConfig(
        namespace=center.namespace,
        sip_domain=center.spec.sip_domain,
        flows=compiled,
        numbers={n.did: n.flow for n in center.spec.numbers},
        queues={name: _media(q) for name, q in sorted(queues.items())},
        extensions=extensions,
        recording_policy=center.spec.recording.policy.value,
        recording_format=center.spec.recording.format.value,
        default_queue=default_queue or (voice[0] if voice else None),
        plugins=tuple(center.spec.plugins),
        trunks=tuple(t.name for t in center.spec.trunks),
        digest=digest.hexdigest(),
        languages={f.name: f.spec.language for f in flows},
    )
