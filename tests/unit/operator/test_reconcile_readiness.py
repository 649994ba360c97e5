"""The reconciler's readiness logic with an in-memory API client: what Ready waits for, and
that a workload's status change costs a readiness pass, not a full one."""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from callmesh.operator import status as st
from callmesh.operator.kube import Ref
from callmesh.operator.reconcile import Reconciler

ROOT = Path(__file__).resolve().parents[3]
NS = "acme-insurance"


class FakeClient:
    """Objects in dicts; counts the lists by kind. Enough of KubeClient for the reconciler."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.lists: collections.Counter[str] = collections.Counter()
        self.uid = 0

    async def list(
        self, ref: Ref, namespace: str | None, labels: Any = None
    ) -> list[dict[str, Any]]:
        self.lists[ref.kind] += 1
        await asyncio.sleep(0)  # a real request yields to the event loop
        return [
            copy.deepcopy(o)
            for (kind, ns, _), o in self.objects.items()
            if kind == ref.kind
            and (namespace is None or ns == namespace)
            and all(
                (o["metadata"].get("labels") or {}).get(k) == v for k, v in (labels or {}).items()
            )
        ]

    async def get(self, ref: Ref, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((ref.kind, namespace, name))
        return copy.deepcopy(found) if found else None

    async def create(self, ref: Ref, namespace: str, body: Any) -> dict[str, Any]:
        obj = copy.deepcopy(dict(body))
        obj.setdefault("kind", ref.kind)
        self.uid += 1
        meta = obj["metadata"]
        name = meta.get("name") or f"{meta.get('generateName', 'x')}{self.uid}"
        obj["metadata"] = {**meta, "name": name, "uid": str(self.uid), "generation": 1}
        self.objects[(ref.kind, namespace, obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    async def patch(
        self, ref: Ref, namespace: str, name: str, patch: Any, subresource: str | None = None
    ) -> dict[str, Any]:
        obj = self.objects[(ref.kind, namespace, name)]
        for key, value in patch.items():
            if key == "metadata":
                continue
            if isinstance(value, dict) and isinstance(obj.get(key), dict):
                obj[key] = {**obj[key], **value}
            else:
                obj[key] = copy.deepcopy(value)
        return copy.deepcopy(obj)

    async def delete(self, ref: Ref, namespace: str, name: str) -> bool:
        return self.objects.pop((ref.kind, namespace, name), None) is not None

    def ready(self, *names: str) -> None:
        for (kind, _, name), obj in self.objects.items():
            if kind in ("StatefulSet", "Deployment") and (not names or name in names):
                replicas = obj["spec"].get("replicas", 1)
                obj["status"] = {
                    "observedGeneration": 1,
                    "replicas": replicas,
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                    "updatedReplicas": replicas,
                }


def seeded() -> FakeClient:
    client = FakeClient()
    for path in sorted((ROOT / "examples" / NS).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                client.objects[(doc["kind"], NS, doc["metadata"]["name"])] = {
                    **doc,
                    "metadata": {
                        **doc["metadata"],
                        "uid": doc["metadata"]["name"],
                        "generation": 1,
                    },
                }
    for kind, name, data in (
        ("Secret", "acme-trunk-credentials", {"username": "dQ==", "password": "cA=="}),
        ("ConfigMap", "acme-renewals-contacts", {"renewals-contacts.csv": "id,phone"}),
        ("ConfigMap", "acme-do-not-call", {"do-not-call.txt": ""}),
    ):
        client.objects[(kind, NS, name)] = {"kind": kind, "metadata": {"name": name}, "data": data}
    return client


def reconciler(client: FakeClient) -> Reconciler:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return Reconciler(client, clock=lambda: t0, password=lambda: "pw")  # type: ignore[arg-type]


async def test_ready_waits_for_every_workload_and_readiness_passes_list_little() -> None:
    client = seeded()
    rec = reconciler(client)
    # during a tenant's first pass any workload event asks for another pass (the pass may
    # have read the workload before it changed); before it, none is needed
    event = {"kind": "Deployment", "metadata": {"name": "acme-router"}, "status": {}}
    assert not rec.workload_changed(NS, event)
    first = asyncio.ensure_future(rec.reconcile(NS))
    await asyncio.sleep(0)
    assert rec.workload_changed(NS, event)
    outcome = await first
    center = outcome.verdicts[("ContactCenter", "acme")]
    assert (center.ready, center.reason, center.progressing) == (False, st.PODS_NOT_READY, True)
    assert "acme-freeswitch 0/2 ready" in center.message
    queue = outcome.verdicts[("Queue", "sales")]
    assert not queue.ready and queue.reason == st.PODS_NOT_READY

    client.ready("acme-freeswitch", "acme-callcontrol", "acme-dialer")
    (sts,) = [
        o
        for (k, _, n), o in client.objects.items()
        if n == "acme-freeswitch" and k == "StatefulSet"
    ]
    assert rec.workload_changed(NS, sts)
    client.lists.clear()
    outcome = await rec.reconcile(NS, full=False)
    center = outcome.verdicts[("ContactCenter", "acme")]
    assert not center.ready and center.message.endswith("acme-router 0/1 ready")
    # a readiness pass reads the resources and the workloads, not every child kind
    assert client.lists["NetworkPolicy"] == client.lists["Secret"] == 0
    assert client.lists["Deployment"] == client.lists["StatefulSet"] == 1
    assert not rec.workload_changed(NS, sts)

    client.ready()
    outcome = await rec.reconcile(NS, full=False)
    assert outcome.ready
    assert outcome.verdicts[("Queue", "sales")].reason == st.AVAILABLE


async def test_a_full_request_waiting_with_readiness_requests_gets_a_full_pass() -> None:
    client = seeded()
    rec = reconciler(client)
    await rec.reconcile(NS)
    client.lists.clear()
    first = asyncio.ensure_future(rec.reconcile(NS, full=False))
    await asyncio.sleep(0)  # the first pass holds the lock; the next two wait together
    waiting = [asyncio.ensure_future(rec.reconcile(NS, full=f)) for f in (False, True)]
    await asyncio.sleep(0)
    assert not first.done()
    await asyncio.gather(first, *waiting)
    # two passes: the readiness one, then one full pass serving both waiting requests
    assert client.lists["NetworkPolicy"] == 1
    assert client.lists["Deployment"] == 2


async def test_requests_while_a_pass_is_pending_return_at_once_and_are_served() -> None:
    client = seeded()
    rec = reconciler(client)
    await rec.reconcile(NS)
    client.lists.clear()
    running = asyncio.ensure_future(rec.reconcile(NS, full=False))
    await asyncio.sleep(0)  # a readiness pass holds the lock
    waiter = asyncio.ensure_future(rec.request(NS, full=False))
    await asyncio.sleep(0)
    # a burst of change events: each finds the waiter's pass pending and returns at once
    # (a kopf handler would then let go of its event's body)
    assert await rec.request(NS) is None
    assert await rec.request(NS, full=False) is None
    await running
    outcome = await waiter
    assert outcome is not None
    # two passes: the running readiness pass, then one full pass for the waiter and the burst
    assert client.lists["NetworkPolicy"] == 1
    assert client.lists["Deployment"] == 2
    # once that pass has started, a new request is pending again: it waits for its own pass
    assert await rec.request(NS) is not None
    assert client.lists["NetworkPolicy"] == 2


async def test_a_request_coalesced_on_a_waiter_served_early_gets_its_own_pass() -> None:
    client = seeded()
    rec = reconciler(client)
    await rec.reconcile(NS)
    client.lists.clear()
    running = asyncio.ensure_future(rec.reconcile(NS, full=False))
    await asyncio.sleep(0)
    joiner = asyncio.ensure_future(rec.reconcile(NS, full=False))  # first in line for the lock
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(rec.request(NS, full=False))
    await asyncio.sleep(0)
    await running
    # the joiner's pass has started and covers the waiter; a request made now is not covered
    # by it, so it must not count on the waiter (which returns when the joiner's pass ends)
    while client.lists["Deployment"] < 2:
        await asyncio.sleep(0)
    late = asyncio.ensure_future(rec.request(NS))
    await asyncio.gather(joiner, waiter)
    assert await late is not None
    assert client.lists["NetworkPolicy"] == 1  # the late request's own full pass
