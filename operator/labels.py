"""Names, labels and owner references of every object the operator creates: one place for each.

Labels follow ``app.kubernetes.io/*``; immutable selectors (StatefulSet, Deployment,
Service, NetworkPolicy) carry only ``name`` and ``instance`` plus ``component``, so that a
version bump never needs a selector change.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from callmesh import __version__
from callmesh.api import ContactCenter

PART_OF = "callmesh"
MANAGED_BY = "callmesh-operator"
ANNOTATION_PREFIX = "callmesh.io/"
#: Hash of the inputs an object was rendered from; equal hash means nothing to write.
INPUT_HASH = ANNOTATION_PREFIX + "input-hash"
#: Hash of a pod template's configuration, so a config change rolls the pods.
CONFIG_HASH = ANNOTATION_PREFIX + "config-hash"
#: Label marking every child, so leftovers can be found by selector and deleted.
TENANT_LABEL = ANNOTATION_PREFIX + "tenant"


def dns_label(value: str, max_length: int = 63) -> str:
    """``value`` as an RFC 1123 label: lowercase, [a-z0-9-], trimmed, hashed if too long."""
    label = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-") or "x"
    if len(label) > max_length:
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        label = label[: max_length - 9].rstrip("-") + "-" + digest
    return label


def child_name(center: ContactCenter, suffix: str) -> str:
    """Name of a child object of ``center``: ``<center>-<suffix>``."""
    return dns_label(f"{center.name}-{suffix}")


def selector_labels(center: ContactCenter, component: str) -> dict[str, str]:
    """The immutable selector of a component's pods."""
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": center.name,
    }


def labels_for(center: ContactCenter, component: str) -> dict[str, str]:
    """Every label of a child object of ``center`` serving ``component``."""
    return {
        **selector_labels(center, component),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/version": __version__,
        TENANT_LABEL: center.name,
    }


def owner_reference(center: ContactCenter) -> dict[str, Any]:
    """The controller owner reference that makes deleting the center delete its children."""
    return {
        "apiVersion": center.api_version,
        "kind": center.kind,
        "name": center.name,
        "uid": center.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata_for(
    center: ContactCenter, name: str, component: str, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """The metadata block of a child: name, namespace, labels, owner, annotations."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": center.namespace,
        "labels": labels_for(center, component),
    }
    if center.metadata.uid:
        meta["ownerReferences"] = [owner_reference(center)]
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return meta


def content_hash(value: Any) -> str:
    """A stable short hash of JSON-able ``value``."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
