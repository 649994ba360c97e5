"""apply_set and the dialer's state claim: created once, never patched, removed with the dialer."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

from callmesh.operator.apply import apply_set
from callmesh.operator.kube import REFS, Ref
from callmesh.operator.render import render_tenant

from callmesh.api import Tenant

CAMPAIGN_YAML = """
---
apiVersion: callmesh.io/v1alpha1
kind: DialerCampaign
metadata: {name: renewals, namespace: tenant-a}
spec:
  mode: progressive
  queue: support
  contactList: {configMap: {name: renewals-contacts, key: contacts.csv}}
  callerId: {number: "+4930555010"}
"""
SELECTOR = {"app.kubernetes.io/managed-by": "callmesh-operator"}


class Client:
    """Objects in a dict, writes recorded: the part of KubeClient apply_set uses."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []

    async def list(self, ref: Ref, namespace: str, labels: Any = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (kind, _), o in self.objects.items() if kind == ref.kind]

    async def get(self, ref: Ref, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get((ref.kind, name)))

    async def create(self, ref: Ref, namespace: str, body: Any) -> dict[str, Any]:
        self.writes.append(("create", ref.kind, body["metadata"]["name"]))
        self.objects[(ref.kind, body["metadata"]["name"])] = copy.deepcopy(dict(body))
        return copy.deepcopy(dict(body))

    async def patch(self, ref: Ref, namespace: str, name: str, body: Any) -> dict[str, Any]:
        self.writes.append(("patch", ref.kind, name))
        self.objects[(ref.kind, name)] = copy.deepcopy(dict(body))
        return copy.deepcopy(dict(body))

    async def delete(self, ref: Ref, namespace: str, name: str) -> bool:
        self.writes.append(("delete", ref.kind, name))
        return self.objects.pop((ref.kind, name), None) is not None


def test_the_claim_is_a_known_core_kind() -> None:
    ref = REFS["PersistentVolumeClaim"]
    assert (ref.group, ref.version, ref.plural) == ("", "v1", "persistentvolumeclaims")


def test_claim_is_created_once_never_patched_and_goes_with_the_campaigns(
    tenant_yaml: str, load_tenant: Callable[[str], Tenant]
) -> None:
    client = Client()

    def apply(tenant: Tenant) -> Any:
        return asyncio.run(apply_set(client, "tenant-a", SELECTOR, render_tenant(tenant)))

    first = apply(load_tenant(tenant_yaml + CAMPAIGN_YAML))
    assert "PersistentVolumeClaim/center-dialer-state" in first.created
    claim = client.objects[("PersistentVolumeClaim", "center-dialer-state")]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"

    # a new size is rendered, but the live claim (immutable spec) is left as it is
    bigger = tenant_yaml.replace(
        "spec:\n", "spec:\n  workers:\n    dialer:\n      stateStorageSize: 5Gi\n", 1
    )
    client.writes.clear()
    apply(load_tenant(bigger + CAMPAIGN_YAML))
    assert not [w for w in client.writes if w[1] == "PersistentVolumeClaim"]
    claim = client.objects[("PersistentVolumeClaim", "center-dialer-state")]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"

    # no campaign any more: no dialer, and its claim is deleted as a leftover
    last = apply(load_tenant(tenant_yaml))
    assert "PersistentVolumeClaim/center-dialer-state" in last.deleted
    assert "Deployment/center-dialer" in last.deleted
