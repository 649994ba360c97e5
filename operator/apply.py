"""The one generic helper that makes a namespace's children equal a desired set.

``apply_set`` lists what exists by label selector, creates what is missing, patches what
differs and deletes leftovers. Each desired object carries an input-hash annotation (the
hash of what it was rendered to); an object whose hash matches and whose live content still
covers the desired content is left alone, so reconciling unchanged input writes nothing,
while a child someone edited by hand is patched back (drift repair). Kinds listed in
``create_only`` (generated Secrets; PersistentVolumeClaims, whose spec is immutable once
created) are created once and never rewritten.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callmesh.operator.kube import REFS, ApiError, KubeClient
from callmesh.operator.labels import INPUT_HASH, content_hash

#: Kinds of the children the operator keeps, in the order they are created.
CHILD_KINDS = (
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "StatefulSet",
    "Deployment",
    "PodDisruptionBudget",
    "NetworkPolicy",
)


@dataclass
class ApplyResult:
    """What ``apply_set`` wrote, as ``Kind/name`` strings."""

    created: list[str] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The newest body seen of each desired object of a ``watch_status`` kind, by
    ``Kind/name`` (what the list, create or patch returned), to read its status from."""

    @property
    def changed(self) -> bool:
        """True when anything was written."""
        return bool(self.created or self.patched or self.deleted)


def stamp(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` with its input-hash annotation set (the hash of everything else in it)."""
    out = dict(obj)  # nested values are shared, never modified
    meta = dict(out.get("metadata") or {})
    annotations = {
        k: v for k, v in (meta.pop("annotations", None) or {}).items() if k != INPUT_HASH
    }
    digest = content_hash({**out, "metadata": {**meta, "annotations": annotations}})
    meta["annotations"] = {**annotations, INPUT_HASH: digest}
    out["metadata"] = meta
    return out


def covers(live: Any, desired: Any) -> bool:
    """True when ``live`` holds everything ``desired`` says (server-added keys allowed)."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and covers(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(covers(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def _essence(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    return {
        **{k: v for k, v in obj.items() if k not in ("metadata", "status")},
        "metadata": {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta},
    }


def up_to_date(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Same input hash, and the live object still covers the desired one."""
    live_hash = (live.get("metadata", {}).get("annotations") or {}).get(INPUT_HASH)
    want_hash = desired["metadata"]["annotations"][INPUT_HASH]
    return live_hash == want_hash and covers(live, _essence(desired))


async def apply_set(
    client: KubeClient,
    namespace: str,
    selector: Mapping[str, str],
    desired: Iterable[Mapping[str, Any]],
    kinds: Collection[str] = CHILD_KINDS,
    create_only: Collection[str] = ("Secret", "PersistentVolumeClaim"),
    watch_status: Collection[str] = ("StatefulSet", "Deployment"),
    stamped: bool = False,
) -> ApplyResult:
    """Make the objects of ``kinds`` matching ``selector`` in ``namespace`` equal ``desired``.

    Every desired object must carry the selector's labels, or the next call would delete it
    as a leftover. A create that meets an existing object (409, e.g. after a lost response)
    re-reads it and patches it if needed, so a retry never duplicates a child.
    ``stamped`` says the objects carry their input-hash annotation already (:func:`stamp`).
    """
    result = ApplyResult()
    wanted: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for obj in desired:
        kind = obj["kind"]
        if kind not in wanted:
            raise ValueError(f"{kind} is not a child kind the operator manages")
        labels = obj["metadata"].get("labels", {})
        if any(labels.get(k) != v for k, v in selector.items()):
            raise ValueError(f"{kind}/{obj['metadata']['name']} lacks the selector labels")
        wanted[kind].append(dict(obj) if stamped else stamp(obj))
    for kind in kinds:
        ref = REFS[kind]
        live = {o["metadata"]["name"]: o for o in await client.list(ref, namespace, selector)}
        for obj in wanted[kind]:
            name = obj["metadata"]["name"]
            current = live.pop(name, None)
            if current is None:
                try:
                    created = await client.create(ref, namespace, obj)
                    result.created.append(f"{kind}/{name}")
                    if kind in watch_status:
                        result.live[f"{kind}/{name}"] = created or obj
                    continue
                except ApiError as exc:
                    if exc.status != 409:
                        raise
                    conflict = exc
                current = await client.get(ref, namespace, name)
                if current is None:  # deleted again in between: the next reconcile creates it
                    raise conflict
            if kind in create_only or up_to_date(current, obj):
                result.unchanged += 1
                if kind in watch_status:
                    result.live[f"{kind}/{name}"] = current
                continue
            patched = await client.patch(ref, namespace, name, obj)
            result.patched.append(f"{kind}/{name}")
            if kind in watch_status:
                result.live[f"{kind}/{name}"] = patched or obj
        for name in sorted(live):
            if await client.delete(ref, namespace, name):
                result.deleted.append(f"{kind}/{name}")
    return result
