"""The router's configuration: the operator's rendered ``tenant.yaml``, as engine input.

The operator renders a ConfigMap per worker role (``operator/render.py``
``build_worker_configmap``) whose ``tenant.yaml`` holds the tenant's ContactCenter, Queue
and AgentTeam manifests as multi-document YAML. :func:`load_config` parses it with the
``callmesh.api`` models (every per-object check of ``callmesh validate``), maps the models
onto the engine's configuration with :func:`callmesh.acd.config.from_resources` and checks them with the engine's own
:func:`callmesh.acd.config.validate`, so a bad file is refused as a whole with messages that
name the file, line and field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callmesh.acd.config import QueueConfig, TeamConfig, from_resources, validate
from callmesh.acd.errors import ConfigError
from callmesh.api import AgentTeam, ContactCenter, Queue
from callmesh.api.commands import read_documents
from callmesh.api.validate import check

__all__ = ["RouterConfig", "RouterConfigError", "ServiceLevelTarget", "load_config"]


class RouterConfigError(ValueError):
    """The config file cannot be used; the message lists every problem with its place."""


@dataclass(frozen=True, slots=True)
class ServiceLevelTarget:
    """A queue's service-level target: ``target`` share answered within ``seconds``.

    Abandons before ``exclude_abandoned_under`` seconds are not counted at all.
    """

    seconds: float
    target: float
    exclude_abandoned_under: float = 0.0


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Everything the router needs from the tenant's manifests.

    Attributes:
        namespace: the tenant.
        queues: engine queues, sorted by name.
        teams: engine teams, sorted by name.
        plugins: the ContactCenter's ``spec.plugins`` (for the plugin manager).
        service_levels: queue name -> service-level target.
        digest: SHA-256 of the file's bytes (a reload with the same digest is a no-op).
    """

    namespace: str
    queues: tuple[QueueConfig, ...]
    teams: tuple[TeamConfig, ...]
    plugins: tuple[Any, ...] = ()
    service_levels: dict[str, ServiceLevelTarget] = field(default_factory=dict)
    digest: str = ""

    def agent_ids(self) -> set[str]:
        """Every agent of every team."""
        return {a.id for t in self.teams for a in t.agents}

    def plugin_key(self) -> str:
        """A stable text of the plugin settings (to see whether a reload changes them)."""
        return repr([_dump(p) for p in self.plugins])


def _dump(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    return dump(mode="json") if callable(dump) else obj


def load_config(path: str | Path) -> RouterConfig:
    """Read and check the rendered ``tenant.yaml`` (or a folder of manifests).

    Cross-references to kinds the router does not receive (IVRFlows of the center's
    numbers) are not checked here: the operator checked them when it rendered the file.

    Raises:
        RouterConfigError: the file is missing, is not valid YAML, holds an invalid object,
            holds objects of several namespaces, or the queues and teams do not fit together
            (each problem with its file, line and field).
    """
    path = Path(path)
    if not path.exists():
        raise RouterConfigError(
            f"{path}: no such file: pass --config the rendered tenant.yaml (the router's"
            " ConfigMap, mounted at /etc/callmesh)"
        )
    digest = hashlib.sha256()
    try:
        files = sorted(p for p in path.rglob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.read_bytes())
    except OSError as exc:
        raise RouterConfigError(f"{path}: cannot read the router config: {exc}") from None
    docs, problems = read_documents([path])
    found, checked = check(docs)
    bad_docs = len(docs) - len(checked)
    if problems or bad_docs:
        listed = problems + (found if bad_docs else [])
        lines = "\n".join(p.format() for p in listed[:20]) or f"{path}: unreadable"
        raise RouterConfigError(f"{path}: the router config has problems:\n{lines}")
    namespaces = sorted({c.obj.namespace for c in checked})
    if len(namespaces) > 1:
        raise RouterConfigError(
            f"{path}: objects of several namespaces ({', '.join(namespaces)}): a router serves"
            " one tenant; render one config per namespace"
        )
    center: ContactCenter | None = None
    queues: dict[str, Queue] = {}
    teams: dict[str, AgentTeam] = {}
    for c in checked:
        obj = c.obj
        if isinstance(obj, ContactCenter):
            if center is not None:
                raise RouterConfigError(
                    f"{c.doc.file}:{c.doc.line}: a second ContactCenter ({obj.name}); a"
                    " tenant has one"
                )
            center = obj
        elif isinstance(obj, Queue):
            queues[obj.name] = obj
        elif isinstance(obj, AgentTeam):
            teams[obj.name] = obj
    queue_list, team_list = from_resources(
        (queues[n] for n in sorted(queues)), (teams[n] for n in sorted(teams))
    )
    queue_configs, team_configs = tuple(queue_list), tuple(team_list)
    try:
        validate(queue_configs, team_configs)
    except ConfigError as exc:
        raise RouterConfigError(f"{path}: {exc}") from None
    levels = {
        name: ServiceLevelTarget(
            float(q.spec.service_level.seconds),
            float(q.spec.service_level.percent) / 100.0,
            float(q.spec.service_level.exclude_abandoned_under_seconds),
        )
        for name, q in queues.items()
    }
    return RouterConfig(
        namespace=namespaces[0] if namespaces else "",
        queues=queue_configs,
        teams=team_configs,
        plugins=tuple(center.spec.plugins) if center is not None else (),
        service_levels=levels,
        digest=digest.hexdigest(),
    )
