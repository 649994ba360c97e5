"""The real operator (kopf, our handlers, reconciler and client) against the API stand-in.

Each test starts :func:`callmesh.operator.handlers.run_operator` (what ``callmesh operator``
runs) as a task, logged in through a kubeconfig that points at the stand-in, creates objects
through the stand-in's HTTP API (so watches fire), and waits on conditions in the stand-in's
store, never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml
from callmesh.operator.handlers import OperatorConfig, run_operator
from callmesh.operator.labels import CONFIG_HASH, INPUT_HASH

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _standin() -> Any:
    name = "callmesh_operator_standin"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("test_operator_standin.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


standin = _standin()
ApiServer, Fault = standin.ApiServer, standin.Fault


def example_docs(tenant: str) -> list[dict[str, Any]]:
    docs = []
    for path in sorted((EXAMPLES / tenant).glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def trunk_secret(
    namespace: str, name: str, keys: tuple[str, ...] = ("username", "password")
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(f"test-{k}".encode()).decode() for k in keys},
    }


def list_configmaps(namespace: str) -> list[dict[str, Any]]:
    """The campaign lists of an example tenant, as ``kubectl create configmap NAME
    --from-file=examples/<tenant>/data/<file>`` makes them (examples/README.md)."""
    data = EXAMPLES / namespace / "data"
    names = {
        "acme-insurance": {
            "acme-renewals-contacts": "renewals-contacts.csv",
            "acme-do-not-call": "do-not-call.txt",
        },
        "globex-telecom": {
            "globex-fiber-contacts": "fiber-upgrade-contacts.csv",
            "globex-do-not-call": "do-not-call.txt",
        },
    }[namespace]
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {file: (data / file).read_text()},
        }
        for name, file in names.items()
    ]


@dataclass
class Cluster:
    api: Any
    session: Any

    async def create(self, *docs: dict[str, Any]) -> None:
        await standin.apply_manifests(self.session, docs)

    async def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.patch(
            path, json=body, headers={"Content-Type": "application/merge-patch+json"}
        ) as resp:
            assert resp.status == 200, await resp.text()
            result: dict[str, Any] = await resp.json()
            return result

    async def delete(self, path: str) -> None:
        async with self.session.delete(path) as resp:
            assert resp.status == 200, await resp.text()

    def condition(self, plural: str, ns: str, name: str, kind: str) -> dict[str, Any] | None:
        obj = self.api.find(plural, ns, name)
        for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
            if cond["type"] == kind:
                return dict(cond)
        return None

    def is_(self, plural: str, ns: str, name: str, kind: str, reason: str | None = None) -> bool:
        cond = self.condition(plural, ns, name, kind)
        obj = self.api.find(plural, ns, name)
        return bool(
            cond
            and cond["status"] == "True"
            and (reason is None or cond["reason"] == reason)
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        )

    def ready(self, ns: str) -> bool:
        return all(
            self.is_(plural, ns, o["metadata"]["name"], "Ready")
            for plural in ("contactcenters", "queues", "agentteams", "ivrflows", "dialercampaigns")
            for o in self.api.objects(plural, ns)
        ) and bool(self.api.objects("contactcenters", ns))

    async def wait(
        self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = ""
    ) -> None:
        """Wait until ``predicate()`` holds, re-checking after every write to the stand-in."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            self.api.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.api.changed.wait(), min(remaining, 0.5))


class OperatorThread:
    """``run_operator`` (what ``callmesh operator`` runs) in a thread with its own event loop.

    kopf owns its loop (it cancels leftover tasks when it stops), so, as in
    ``kopf.testing.KopfRunner``, it runs in a thread; the stand-in serves from the test's loop.
    """

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(run_operator(self.config, stop_flag=self._stop, ready_flag=self.ready))
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def __enter__(self) -> OperatorThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(20)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        assert not self._thread.is_alive(), "the operator did not stop"
        assert self.error is None, f"the operator failed: {self.error!r}"


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with ApiServer() as api, kmock.Server(api) as server:
        config_path = tmp_path / "kubeconfig"
        standin.kubeconfig(str(server.url).rstrip("/"), config_path)
        monkeypatch.setenv("KUBECONFIG", str(config_path))
        config = OperatorConfig(drift_interval=1.0, retry_delay=0.3, liveness=None)
        with OperatorThread(config) as operator:
            await asyncio.to_thread(operator.ready.wait, 15)
            assert operator.ready.is_set(), "the operator did not start"
            yield Cluster(api, server.client)
            await asyncio.to_thread(operator.stop)


def children(api: Any, ns: str) -> dict[str, dict[str, Any]]:
    out = {}
    for plural in (
        "serviceaccounts",
        "roles",
        "rolebindings",
        "configmaps",
        "secrets",
        "persistentvolumeclaims",
        "services",
        "statefulsets",
        "deployments",
        "poddisruptionbudgets",
        "networkpolicies",
    ):
        for obj in api.objects(plural, ns):
            if (
                obj["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by")
                == "callmesh-operator"
            ):
                out[f"{obj.get('kind', plural)}/{obj['metadata']['name']}"] = obj
    return out


async def test_examples_become_children_and_honest_status(cluster: Cluster) -> None:
    api = cluster.api
    await cluster.create(trunk_secret("acme-insurance", "acme-trunk-credentials"))
    await cluster.create(*list_configmaps("acme-insurance"), *list_configmaps("globex-telecom"))
    await cluster.create(*example_docs("acme-insurance"), *example_docs("globex-telecom"))

    await cluster.wait(lambda: cluster.ready("acme-insurance"), what="acme Ready")
    acme = children(api, "acme-insurance")
    names = {k.split("/", 1)[1] for k in acme}
    assert {
        "acme-freeswitch",
        "acme-router",
        "acme-callcontrol",
        "acme-dialer",
        "acme-esl",
    } <= names
    assert "acme-agent-" + "a" not in names  # agent secrets are named by agent id
    assert sum(1 for k in acme if k.startswith("Secret/")) == 1 + 40  # ESL + one per agent
    for obj in acme.values():
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "ContactCenter"
        assert INPUT_HASH in obj["metadata"]["annotations"]
    center = api.find("contactcenters", "acme-insurance", "acme")
    assert center["status"]["queues"] == 3 and center["status"]["agents"] == 40

    # globex has no trunk Secret yet: its center is Degraded, nothing of it is written
    await cluster.wait(
        lambda: cluster.is_(
            "contactcenters", "globex-telecom", "globex", "Degraded", "SecretNotFound"
        ),
        what="globex Degraded",
    )
    cond = cluster.condition("contactcenters", "globex-telecom", "globex", "Degraded")
    assert cond is not None and "spec.trunks[0].username" in cond["message"]
    assert "globex-trunk-credentials" in cond["message"]
    await cluster.wait(
        lambda: cluster.is_(
            "queues", "globex-telecom", "sales", "Progressing", "WaitingForContactCenter"
        )
    )
    assert children(api, "globex-telecom") == {}
    await cluster.wait(
        lambda: any(
            e["reason"] == "SecretNotFound" and e["type"] == "Warning"
            for e in api.objects("events", "globex-telecom")
        ),
        what="a Warning Event on the center",
    )

    # a Secret without the password key: still Degraded, now naming the key
    await cluster.create(trunk_secret("globex-telecom", "globex-trunk-credentials", ("username",)))
    await cluster.wait(
        lambda: cluster.is_(
            "contactcenters", "globex-telecom", "globex", "Degraded", "SecretKeyNotFound"
        )
    )
    await cluster.patch(
        "/api/v1/namespaces/globex-telecom/secrets/globex-trunk-credentials",
        {"data": {"password": base64.b64encode(b"pw").decode()}},
    )
    await cluster.wait(lambda: cluster.ready("globex-telecom"), what="globex Ready")
    globex = children(api, "globex-telecom")
    sip = api.find("services", "globex-telecom", "globex-sip")
    assert sip is not None and sip["spec"]["type"] == "LoadBalancer"
    assert len(globex) > 10
    ready = cluster.condition("contactcenters", "globex-telecom", "globex", "Ready")
    assert ready is not None and ready["reason"] == "Available"
    assert "globex-router 1/1 ready" in ready["message"]

    # no Secret value is in a ConfigMap, anywhere
    values = {
        base64.b64decode(v).decode()
        for s in api.objects("secrets")
        for v in (s.get("data") or {}).values()
    }
    for cm in api.objects("configmaps"):
        text = "".join(cm.get("data", {}).values())
        assert not any(v in text for v in values if len(v) > 8)


async def test_unchanged_input_writes_nothing_and_edits_roll_out(cluster: Cluster) -> None:
    api = cluster.api
    await cluster.create(trunk_secret("acme-insurance", "acme-trunk-credentials"))
    await cluster.create(*list_configmaps("acme-insurance"))
    await cluster.create(*example_docs("acme-insurance"))
    await cluster.wait(lambda: cluster.ready("acme-insurance"))

    # the drift timer runs every second: once kopf's own bookkeeping has settled, full
    # passes over an unchanged tenant write nothing
    for _ in range(10):  # settled: a whole drift pass during which nothing was written
        version, lists = api.version, api.counts[("GET", "queues")]
        await cluster.wait(
            lambda lists=lists: api.counts[("GET", "queues")] >= lists + 2, what="settling"
        )
        if api.version == version:
            break
    version = api.version
    lists = api.counts[("GET", "queues")]
    await cluster.wait(
        lambda: api.counts[("GET", "queues")] >= lists + 2, what="two more reconciles"
    )
    written = [line[:300] for v, _, _, _, line in api.log if v > version]
    assert api.version == version, f"a reconcile of unchanged input wrote {written}"

    cm = api.find("configmaps", "acme-insurance", "acme-router")
    deployment = api.find("deployments", "acme-insurance", "acme-router")
    old_hash = deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]
    assert "maxWaitSeconds: 600" in cm["data"]["tenant.yaml"]
    queue = "/apis/callmesh.io/v1alpha1/namespaces/acme-insurance/queues/sales"
    edited = await cluster.patch(queue, {"spec": {"maxWaitSeconds": 300}})
    assert edited["metadata"]["generation"] == 2

    def rolled() -> bool:
        cm = api.find("configmaps", "acme-insurance", "acme-router")
        dep = api.find("deployments", "acme-insurance", "acme-router")
        return (
            "maxWaitSeconds: 300" in cm["data"]["tenant.yaml"]
            and dep["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH] != old_hash
        )

    await cluster.wait(rolled, what="router ConfigMap and rollout updated")
    await cluster.wait(lambda: cluster.is_("queues", "acme-insurance", "sales", "Ready"))
    ready = cluster.condition("queues", "acme-insurance", "sales", "Ready")
    assert ready is not None and ready["observedGeneration"] == 2


async def test_bad_reference_degrades_only_that_object_and_deleted_children_return(
    cluster: Cluster,
) -> None:
    api = cluster.api
    await cluster.create(trunk_secret("acme-insurance", "acme-trunk-credentials"))
    await cluster.create(*list_configmaps("acme-insurance"))
    await cluster.create(*example_docs("acme-insurance"))
    await cluster.wait(lambda: cluster.ready("acme-insurance"))
    ready_since = cluster.condition("queues", "acme-insurance", "claims", "Ready")

    queue = "/apis/callmesh.io/v1alpha1/namespaces/acme-insurance/queues/support"
    await cluster.patch(queue, {"spec": {"tiers": [{"level": 1, "teams": ["night-shift"]}]}})
    await cluster.wait(
        lambda: cluster.is_("queues", "acme-insurance", "support", "Degraded", "TeamNotFound")
    )
    cond = cluster.condition("queues", "acme-insurance", "support", "Degraded")
    assert (
        cond is not None
        and "night-shift" in cond["message"]
        and "spec.tiers[0].teams[0]" in cond["message"]
    )
    # the rest of the tenant keeps working: the last valid version of support stays applied
    center = api.find("contactcenters", "acme-insurance", "acme")
    assert cluster.is_("contactcenters", "acme-insurance", "acme", "Ready"), center["status"]
    assert cluster.condition("queues", "acme-insurance", "claims", "Ready") == ready_since
    assert cluster.is_("ivrflows", "acme-insurance", "acme-main", "Ready")
    assert (
        "night-shift"
        not in api.find("configmaps", "acme-insurance", "acme-router")["data"]["tenant.yaml"]
    )

    def warned() -> bool:
        return any(
            e["reason"] == "TeamNotFound"
            and e["type"] == "Warning"
            and e["involvedObject"]["name"] == "support"
            for e in api.objects("events", "acme-insurance")
        )

    await cluster.wait(warned, what="a Warning Event on the queue")

    # a new flow routing to a new, broken queue: neither was ever valid, both are left out
    broken_queue = {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": "broken", "namespace": "acme-insurance"},
        "spec": {"tiers": [{"level": 1, "teams": ["ghosts"]}]},
    }
    flow = {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "IVRFlow",
        "metadata": {"name": "to-broken", "namespace": "acme-insurance"},
        "spec": {
            "entry": "q",
            "nodes": [{"id": "q", "type": "queue", "queue": {"queue": "broken"}}],
        },
    }
    await cluster.create(broken_queue, flow)
    await cluster.wait(
        lambda: cluster.is_(
            "ivrflows", "acme-insurance", "to-broken", "Degraded", "DependencyDegraded"
        )
    )
    assert cluster.is_("queues", "acme-insurance", "broken", "Degraded", "TeamNotFound")
    assert (
        "to-broken"
        not in api.find("configmaps", "acme-insurance", "acme-callcontrol")["data"]["tenant.yaml"]
    )

    # a child deleted by hand comes back (drift timer), one of each, no duplicates
    await cluster.delete("/apis/apps/v1/namespaces/acme-insurance/deployments/acme-router")
    await cluster.wait(lambda: api.find("deployments", "acme-insurance", "acme-router") is not None)
    # a child edited by hand is patched back
    await cluster.patch(
        "/apis/apps/v1/namespaces/acme-insurance/statefulsets/acme-freeswitch",
        {"spec": {"replicas": 7}},
    )
    await cluster.wait(
        lambda: (
            api.find("statefulsets", "acme-insurance", "acme-freeswitch")["spec"]["replicas"] == 2
        )
    )
    # deleting the center deletes every child through owner references
    await cluster.delete("/apis/callmesh.io/v1alpha1/namespaces/acme-insurance/contactcenters/acme")
    try:
        await cluster.wait(lambda: children(api, "acme-insurance") == {})
    except AssertionError:
        left = {
            k: v["metadata"].get("ownerReferences")
            for k, v in children(api, "acme-insurance").items()
        }
        center = api.find("contactcenters", "acme-insurance", "acme")
        meta = {k: v for k, v in (center or {}).get("metadata", {}).items() if k != "annotations"}
        raise AssertionError(
            f"center: {meta}, version {api.version}, left: {list(left)[:3]}"
        ) from None
    await cluster.wait(
        lambda: cluster.is_(
            "queues", "acme-insurance", "sales", "Progressing", "ContactCenterNotFound"
        )
    )


async def test_api_faults_converge_without_duplicates_or_losses(cluster: Cluster) -> None:
    api = cluster.api
    await cluster.create(trunk_secret("acme-insurance", "acme-trunk-credentials"))
    await cluster.create(*list_configmaps("acme-insurance"))
    api.inject(
        Fault("POST", "configmaps", status=500, after_write=True, times=2),  # lost responses
        Fault("POST", "deployments", status=409, times=1),  # conflict on a create
        Fault("PATCH", "queues", status=500, subresource="status", times=3),
        Fault("GET", "agentteams", status=503, times=2),
        Fault("GET", "services", status=0, delay=1.5, times=1),  # a slow response
        Fault("WATCH", "queues", cut_after=3, times=2),  # watch stream cut mid-event
    )
    await cluster.create(*example_docs("acme-insurance"))
    await cluster.wait(lambda: cluster.ready("acme-insurance"), timeout=40, what="convergence")
    assert all(f.hits == f.times for f in api.faults), [
        (f.method, f.plural, f.hits) for f in api.faults
    ]

    from callmesh.operator.render import generated_secrets, render_tenant

    from callmesh.api.validate import load_tenants

    tenant = load_tenants([EXAMPLES / "acme-insurance"])["acme-insurance"]
    wanted = render_tenant(tenant) + generated_secrets(tenant, set(), lambda: "x")
    expected = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in wanted)
    found = sorted(
        f"{obj.get('kind')}/{obj['metadata']['name']}"
        for obj in children(api, "acme-insurance").values()
    )
    assert found == expected  # every child once: none lost, none twice


async def test_ready_waits_for_pods_and_follows_rollouts(cluster: Cluster) -> None:
    api = cluster.api
    api.pods_ready = False  # the stand-in's controllers report nothing until told
    await cluster.create(trunk_secret("acme-insurance", "acme-trunk-credentials"))
    await cluster.create(*list_configmaps("acme-insurance"))
    await cluster.create(*example_docs("acme-insurance"))
    ns = "acme-insurance"

    def message(plural: str, name: str, kind: str = "Progressing") -> str:
        cond = cluster.condition(plural, ns, name, kind)
        return str(cond["message"]) if cond else ""

    await cluster.wait(
        lambda: cluster.is_("contactcenters", ns, "acme", "Progressing", "PodsNotReady"),
        what="the center waiting for its pods",
    )
    text = message("contactcenters", "acme")
    for part in ("acme-freeswitch 0/2 ready", "acme-router 0/1 ready", "acme-dialer 0/1 ready"):
        assert part in text, text
    assert not cluster.is_("contactcenters", ns, "acme", "Ready")
    await cluster.wait(lambda: cluster.is_("queues", ns, "sales", "Progressing", "PodsNotReady"))
    assert "acme-router 0/1 ready" in message("queues", "sales")
    assert not cluster.is_("queues", ns, "sales", "Ready")

    # every workload but the router comes up: the message names only the router
    for plural in ("statefulsets", "deployments"):
        for obj in api.objects(plural, ns):
            if obj["metadata"]["name"] != "acme-router":
                api.set_status(plural, ns, obj["metadata"]["name"], api.ready_status(obj))
    await cluster.wait(
        lambda: (
            "acme-freeswitch" not in message("contactcenters", "acme")
            and "acme-router 0/1 ready" in message("contactcenters", "acme")
        ),
        what="only the router left",
    )
    router = api.find("deployments", ns, "acme-router")
    api.set_status("deployments", ns, "acme-router", api.ready_status(router))
    await cluster.wait(lambda: cluster.ready(ns), what="Ready once every pod is")
    ready = cluster.condition("contactcenters", ns, "acme", "Ready")
    assert ready is not None and ready["reason"] == "Available"
    assert "acme-freeswitch 2/2 ready" in ready["message"]

    # a queue edit rolls the router: Progressing until the new pods are ready
    queue = "/apis/callmesh.io/v1alpha1/namespaces/acme-insurance/queues/sales"
    await cluster.patch(queue, {"spec": {"maxWaitSeconds": 300}})
    await cluster.wait(
        lambda: (
            cluster.is_("contactcenters", ns, "acme", "Progressing", "PodsNotReady")
            and "acme-router 1/1 ready, 0/1 updated" in message("contactcenters", "acme")
        ),
        what="the rollout seen",
    )
    # the rollout stalls (a crash loop): Degraded, saying so
    api.set_status(
        "deployments",
        ns,
        "acme-router",
        {
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": 'ReplicaSet "acme-router-7f9" has timed out progressing.',
                }
            ]
        },
    )
    await cluster.wait(
        lambda: cluster.is_("contactcenters", ns, "acme", "Degraded", "RolloutStalled")
    )
    assert "timed out progressing" in message("contactcenters", "acme", "Degraded")
    # the queues are data of the router, callcontrol and the dialer: all three rolled
    assert "acme-callcontrol 1/2 ready" not in message("contactcenters", "acme", "Degraded")
    for obj in api.objects("deployments", ns):
        status = {**api.ready_status(obj), "conditions": []}
        api.set_status("deployments", ns, obj["metadata"]["name"], status)
    await cluster.wait(lambda: cluster.ready(ns), what="Ready after the rollout")
    assert cluster.condition("queues", ns, "sales", "Ready")["observedGeneration"] == 2


async def test_operator_status_writes_keep_the_workers_live_figures(cluster: Cluster) -> None:
    api = cluster.api
    ns = "acme-insurance"
    await cluster.create(trunk_secret(ns, "acme-trunk-credentials"))
    await cluster.create(*list_configmaps(ns))
    await cluster.create(*example_docs(ns))
    await cluster.wait(lambda: cluster.ready(ns))

    # the workers' figures, written as workers/kubestatus.py does: a merge patch to /status
    base = f"/apis/callmesh.io/v1alpha1/namespaces/{ns}"
    figures = {
        ("queues", "sales"): {"waiting": 3, "serviceLevel": "82%", "agentsAvailable": 2},
        ("agentteams", "sales-desk"): {"loggedIn": 5},
        ("dialercampaigns", "policy-renewals"): {"abandonPercent": 1.5},
    }
    for (plural, name), status in figures.items():
        await cluster.patch(f"{base}/{plural}/{name}/status", {"status": status})

    def kept() -> bool:
        return all(
            {k: (api.find(p, ns, n).get("status") or {}).get(k) for k in status} == status
            for (p, n), status in figures.items()
        )

    # make the operator rewrite every object's status twice: pods go away, then come back
    router = api.find("deployments", ns, "acme-router")
    api.set_status("deployments", ns, "acme-router", {"readyReplicas": 0, "availableReplicas": 0})
    await cluster.wait(
        lambda: all(cluster.is_(p, ns, n, "Progressing", "PodsNotReady") for p, n in figures),
        what="every object Progressing",
    )
    assert kept(), [api.find(p, ns, n)["status"] for p, n in figures]
    api.set_status("deployments", ns, "acme-router", api.ready_status(router))
    await cluster.wait(lambda: cluster.ready(ns))
    assert kept(), [api.find(p, ns, n)["status"] for p, n in figures]
    # and a spec edit (new generation) keeps them too
    await cluster.patch(f"{base}/queues/sales", {"spec": {"maxWaitSeconds": 300}})
    await cluster.wait(
        lambda: api.find("queues", ns, "sales")["status"].get("observedGeneration") == 2
    )
    assert kept()


async def test_campaign_without_its_contact_list_is_degraded_alone(cluster: Cluster) -> None:
    api = cluster.api
    ns = "acme-insurance"
    await cluster.create(trunk_secret(ns, "acme-trunk-credentials"))
    contacts, do_not_call = list_configmaps(ns)
    await cluster.create(do_not_call)
    await cluster.create(*example_docs(ns))
    await cluster.wait(
        lambda: cluster.is_(
            "dialercampaigns", ns, "policy-renewals", "Degraded", "ContactListNotFound"
        )
    )
    cond = cluster.condition("dialercampaigns", ns, "policy-renewals", "Degraded")
    assert cond is not None
    assert "spec.contactList.configMap.name" in cond["message"]
    assert "acme-renewals-contacts" in cond["message"]
    # the rest of the tenant works; the campaign is not dialled (no dialer at all here)
    await cluster.wait(
        lambda: (
            cluster.is_("contactcenters", ns, "acme", "Ready")
            and cluster.is_("queues", ns, "sales", "Ready")
        )
    )
    assert api.find("deployments", ns, "acme-dialer") is None
    assert "policy-renewals" not in api.find("configmaps", ns, "acme-router")["data"]["tenant.yaml"]

    # the list under a wrong key: still Degraded, naming the key
    await cluster.create(
        {**contacts, "data": {"contacts.csv": next(iter(contacts["data"].values()))}}
    )
    await cluster.wait(
        lambda: (
            "has no key renewals-contacts.csv"
            in (cluster.condition("dialercampaigns", ns, "policy-renewals", "Degraded") or {}).get(
                "message", ""
            )
        ),
        what="the missing key named",
    )
    await cluster.patch(f"/api/v1/namespaces/{ns}/configmaps/acme-renewals-contacts", contacts)
    await cluster.wait(lambda: cluster.ready(ns), what="the campaign Ready with its list")
    dialer = api.find("deployments", ns, "acme-dialer")
    assert dialer is not None, (
        [d["metadata"]["name"] for d in api.objects("deployments", ns)],
        api.find("dialercampaigns", ns, "policy-renewals")["status"],
    )
    assert api.find("roles", ns, "acme-dialer")["rules"][0]["resources"] == [
        "dialercampaigns/status"
    ]
