"""One level-based reconcile per tenant: read the namespace, validate, render, apply, report.

Every handler (create, update, resume, delete, the drift timer) calls
:meth:`Reconciler.reconcile` with a namespace; nothing depends on which event arrived. A
reconcile:

1. lists the namespace's ContactCenter, Queues, AgentTeams, IVRFlows and DialerCampaigns;
2. validates them together with :func:`callmesh.api.validate.check`, the same checks as
   ``callmesh validate``; an object with a problem is Degraded and left out, and so is,
   in the next round, anything that needed it (``DependencyDegraded``);
3. checks the Secrets the ContactCenter's trunks reference; a missing Secret or key makes
   the center Degraded and nothing of the tenant is written (what runs keeps running);
   a DialerCampaign whose contact list or do-not-call ConfigMap/Secret is missing is
   Degraded (``ContactListNotFound``) and left out, the rest of the tenant is applied;
4. renders the children with the pure builders (:mod:`callmesh.operator.render`) and applies
   them with the one generic helper (:func:`callmesh.operator.apply.apply_set`);
5. reads the switch StatefulSet's and the worker Deployments' status: Ready only when every
   desired pod is ready and updated, Progressing (``PodsNotReady``) while they start or
   roll out; the operator watches those children, so a change of their readiness
   reconciles the tenant again (:meth:`Reconciler.workload_changed`);
6. writes the status of every object, only where it changed, and an Event per transition.

Concurrent requests for one namespace are coalesced: a request that arrives while a
reconcile runs waits for the next one, which reads everything afresh. The kopf handlers ask
through :meth:`Reconciler.request`, which does not even wait when a pass that has not
started yet will serve them (its caller retries it if it fails), so a burst of events for
one tenant parks one handler, not one per event, each holding its object's body.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml
from callmesh.operator import status as st
from callmesh.operator.apply import CHILD_KINDS, ApplyResult, apply_set, stamp
from callmesh.operator.kube import REFS, ApiError, KubeClient
from callmesh.operator.labels import MANAGED_BY, TENANT_LABEL, child_name, content_hash
from callmesh.operator.render import RenderOptions, generated_secrets, render_tenant

from callmesh.api import KINDS, ContactCenter, DialerCampaign, Resource, Tenant
from callmesh.api.contactcenter import ExposureMode
from callmesh.api.problems import Problem
from callmesh.api.validate import check

logger = logging.getLogger("callmesh.operator")

Key = tuple[str, str]  # (kind, name)
KIND_NAMES = tuple(k.kind_name for k in KINDS)
#: The children whose status says whether the tenant works.
WORKLOAD_KINDS = ("StatefulSet", "Deployment")


def utcnow() -> dt.datetime:
    """The wall clock, in UTC (the reconciler's default clock)."""
    return dt.datetime.now(dt.UTC)


def new_password() -> str:
    """A fresh random password for a generated Secret."""
    return secrets.token_urlsafe(24)


@dataclass
class Outcome:
    """What one reconcile of a namespace concluded and wrote."""

    namespace: str
    verdicts: dict[Key, st.Verdict] = field(default_factory=dict)
    applied: ApplyResult | None = None
    status_writes: int = 0

    @property
    def ready(self) -> bool:
        """True when every object of the namespace is Ready."""
        return all(v.ready for v in self.verdicts.values())


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    requested: int = 0
    # the ticket of the ``request`` caller waiting for a pass that has not started yet
    # (0: none); the next pass to start covers it, and it retries the namespace if its
    # own pass fails
    pending: int = 0
    full_requested: int = 0  # the last ticket that asked for a full pass
    full_done: int = 0
    done: int = 0
    last: Outcome | None = None
    # the last validation and render, reused while their inputs are unchanged
    checked_key: str = ""
    checked: tuple[dict[Key, Resource], dict[Key, st.Verdict]] | None = None
    rendered_key: str = ""
    # the desired children, stamped, as compressed JSON: a tenant's rendered objects take
    # ~150 KiB as Python dicts and ~10 KiB so, and a reconcile decodes them in about 1 ms
    rendered: bytes = b""
    parsed: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)
    # readiness summary of each workload (Kind/name) as the last reconcile saw it
    workloads: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def _key(body: Mapping[str, Any]) -> Key:
    return (str(body.get("kind")), str(body.get("metadata", {}).get("name")))


def _validate(
    bodies: Mapping[Key, Mapping[str, Any]], last_good: Mapping[Key, Mapping[str, Any]]
) -> tuple[dict[Key, Resource], dict[Key, st.Verdict]]:
    """Models to render, and the verdicts of the objects that cannot be applied as they are.

    An object with a problem is Degraded. If a valid version of it is applied already
    (``last_good``, read back from the workers' ConfigMaps), that version stays in the
    render, so one bad edit never takes the rest of the tenant down; otherwise it is left
    out, and so is, in the next round, whatever needed it (``DependencyDegraded``).
    """
    candidates: dict[Key, Mapping[str, Any]] = dict(bodies)
    excluded: dict[Key, st.Verdict] = {}
    fallen_back: set[Key] = set()
    while True:
        problems, checked = check([candidates[k] for k in sorted(candidates)])
        found: dict[Key, list[Problem]] = {}
        for problem in problems:
            key = (problem.kind, problem.name)
            if key in candidates:
                found.setdefault(key, []).append(problem)
        if not found:
            models = {(c.obj.kind_name, c.obj.name): c.obj for c in checked}
            return {k: v for k, v in models.items() if k in candidates}, excluded
        for key, items in found.items():
            if key not in excluded:
                verdict = st.verdict_for_problems(items)
                for problem in items:
                    target = st.missing_reference(problem)
                    if target is not None and target in excluded and target not in candidates:
                        verdict = st.Verdict(
                            False,
                            st.DEPENDENCY_DEGRADED,
                            f"{problem.path}: {target[0]} {target[1]} is Degraded "
                            f"({excluded[target].reason}) — fix it first",
                            degraded=True,
                        )
                        break
                excluded[key] = verdict
            if key in last_good and key not in fallen_back and key in bodies:
                fallen_back.add(key)
                live = bodies[key]
                candidates[key] = {**live, "spec": last_good[key].get("spec")}
                verdict = excluded[key]
                excluded[key] = replace(
                    verdict, message=verdict.message + " (the last valid version stays applied)"
                )
            else:
                candidates.pop(key, None)


_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _applied_specs(
    configmaps: list[dict[str, Any]], parsed: dict[str, tuple[str, list[Any]]]
) -> dict[Key, dict[str, Any]]:
    """The resources the workers run now, read back from their ConfigMaps' tenant.yaml.

    ``parsed`` caches each ConfigMap's documents by name and resourceVersion.
    """
    out: dict[Key, dict[str, Any]] = {}
    for cm in configmaps:
        text = (cm.get("data") or {}).get("tenant.yaml")
        if not text:
            continue
        name = cm["metadata"]["name"]
        version = str(cm["metadata"].get("resourceVersion"))
        if name in parsed and parsed[name][0] == version:
            docs = parsed[name][1]
        else:
            try:
                docs = list(yaml.load_all(text, Loader=_Loader))
            except yaml.YAMLError:
                continue
            parsed[name] = (version, docs)
        for doc in docs:
            if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
                out[_key(doc)] = doc
    return out


class Reconciler:
    """Reconciles tenants through a :class:`KubeClient`; one instance per operator."""

    def __init__(
        self,
        client: KubeClient,
        options: RenderOptions | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        password: Callable[[], str] = new_password,
        concurrency: int = 8,
    ) -> None:
        self.client = client
        # a few tenants at a time: each finishes fast instead of all crawling together
        self._running = asyncio.Semaphore(concurrency)
        self.options = options or RenderOptions()
        self.clock = clock
        self.password = password
        self._slots: dict[str, _Slot] = {}

    def workload_changed(self, namespace: str, body: Mapping[str, Any]) -> bool:
        """True when a watched child's readiness differs from what the last reconcile saw.

        A workload event that changes nothing about readiness (the operator's own patch, a
        label) is ignored. While a tenant's first pass runs, every event counts (the pass may
        have read the workload before the change); before it starts, none does (it reads
        everything afresh).
        """
        slot = self._slots.get(namespace)
        if slot is None:
            return False
        if slot.last is None:
            return slot.lock.locked()
        key = f"{body.get('kind')}/{(body.get('metadata') or {}).get('name')}"
        return slot.workloads.get(key) != st.summary(body)

    @property
    def tenants(self) -> int:
        """Namespaces reconciled at least once by this reconciler."""
        return len(self._slots)

    async def reconcile(self, namespace: str, full: bool = True) -> Outcome:
        """Bring ``namespace`` to its desired state; coalesces concurrent requests.

        ``full=False`` asks only for a readiness pass (a workload's status changed): the
        StatefulSets and Deployments are applied and read, the other children are left to
        the next full pass (a change of the resources, the drift timer). Requests waiting
        together are served by one pass, a full one if any of them asked for it.

        Raises :class:`ApiError` when the API server failed a request; the caller retries.
        """
        outcome = await self._serve(namespace, full, coalesce=False)
        assert outcome is not None
        return outcome

    async def request(self, namespace: str, full: bool = True) -> Outcome | None:
        """Like :meth:`reconcile`, but None at once when a pending pass will serve it.

        A pass is pending from the request that asked for it until it starts reading the
        namespace; it reads everything afresh, so it covers this request too. The caller of
        the pending pass waits for it and must retry the namespace if it raises (a kopf
        change handler does: it raises :class:`kopf.TemporaryError` and kopf calls it
        again), so a request that returned None is never lost. This is what keeps a burst
        of events for one tenant from parking one kopf handler per event, each with its
        object's body.
        """
        return await self._serve(namespace, full, coalesce=True)

    async def _serve(self, namespace: str, full: bool, coalesce: bool) -> Outcome | None:
        slot = self._slots.setdefault(namespace, _Slot())
        slot.requested += 1
        ticket = slot.requested
        if full:
            slot.full_requested = ticket
        if coalesce:
            if slot.pending:
                return None  # a pass that has not started yet reads everything afresh
            slot.pending = ticket
        try:
            async with slot.lock:
                if slot.done >= ticket and slot.last is not None:
                    return slot.last  # a reconcile that started after our request has finished
                async with self._running:
                    slot.pending = 0  # this pass covers every request made so far
                    covers = slot.requested
                    do_full = slot.full_requested > slot.full_done or slot.last is None
                    outcome = await self._reconcile(namespace, slot, do_full)
                slot.done, slot.last = covers, outcome
                if do_full:
                    slot.full_done = covers
                return outcome
        finally:
            if slot.pending == ticket:  # cancelled before a pass started
                slot.pending = 0

    # -- one pass ---------------------------------------------------------------------------

    async def _reconcile(self, namespace: str, slot: _Slot, full: bool = True) -> Outcome:
        outcome = Outcome(namespace)
        bodies: dict[Key, dict[str, Any]] = {}
        for kind in KIND_NAMES:
            for body in await self.client.list(REFS[kind], namespace):
                if not body.get("metadata", {}).get("deletionTimestamp"):
                    bodies[_key(body)] = body
        if not bodies:
            return outcome
        checked = await self._check(namespace, slot, bodies)
        models, verdicts = dict(checked[0]), dict(checked[1])
        for key, verdict in (await self._list_problems(models.values())).items():
            verdicts[key] = verdict
            models.pop(key)
        tenant = Tenant(namespace)
        for model in models.values():
            tenant.add(model)
        center = tenant.center
        center_key = (ContactCenter.kind_name, center.name) if center else None

        if center is not None and center_key is not None:
            trouble = await self._secret_problems(center)
            if trouble is not None:
                verdicts[center_key] = trouble
            else:
                try:
                    outcome.applied = await self._apply(tenant, center, slot, full)
                except ApiError as exc:
                    if exc.retriable:
                        raise
                    verdicts[center_key] = st.Verdict(
                        False,
                        st.APPLY_FAILED,
                        f"the API server refused a child: {exc} — fix the field it names",
                        degraded=True,
                    )
                else:
                    live = outcome.applied.live
                    slot.workloads = {k: st.summary(v) for k, v in live.items()}
                    verdicts[center_key] = st.readiness_verdict(
                        [st.workload(v) for _, v in sorted(live.items())]
                    )
                    live.clear()  # the bodies are large; the summaries are what is kept
        center_verdict = verdicts.get(center_key) if center_key else None
        for key in models:
            if key in verdicts:
                continue
            if center_verdict is None:
                verdicts[key] = st.Verdict(
                    False,
                    st.NO_CENTER,
                    f"namespace {namespace} has no valid ContactCenter — create one; "
                    "this object is applied once it exists",
                    progressing=True,
                )
            elif center_verdict.reason == st.PODS_NOT_READY:
                assert center is not None
                verdicts[key] = st.Verdict(
                    False,
                    st.PODS_NOT_READY,
                    f"configuration applied; ContactCenter {center.name}: "
                    + center_verdict.message.removeprefix("children applied; "),
                    progressing=True,
                )
            elif not center_verdict.ready:
                assert center is not None
                verdicts[key] = st.Verdict(
                    False,
                    st.WAITING,
                    f"ContactCenter {center.name} is Degraded ({center_verdict.reason}); "
                    "this object is applied once it is Ready",
                    progressing=True,
                )
            else:
                verdicts[key] = st.Verdict(
                    True, st.AVAILABLE, "configuration applied; the tenant's pods are ready"
                )
        outcome.verdicts = verdicts
        await self._write_statuses(bodies, verdicts, tenant, outcome)
        return outcome

    async def _check(
        self, namespace: str, slot: _Slot, bodies: Mapping[Key, Mapping[str, Any]]
    ) -> tuple[dict[Key, Resource], dict[Key, st.Verdict]]:
        """The validation of ``bodies`` (:func:`_validate`), reused while they are unchanged.

        What runs (the workers' ConfigMaps) matters only when something is invalid (its last
        valid version stays applied), so a valid tenant's ConfigMaps are neither read nor
        parsed; an invalid one's are, every pass, since they are part of the input.
        """
        input_key = content_hash(
            [
                [k, b.get("spec"), b["metadata"].get("uid"), b["metadata"].get("labels")]
                for k, b in sorted(bodies.items())
            ]
        )
        if slot.checked is not None and slot.checked_key == input_key:
            return slot.checked  # valid, and unchanged
        if slot.checked is None or not slot.checked[1]:
            checked = _validate(bodies, {})
            if not checked[1]:
                slot.checked_key, slot.checked = input_key, checked
                slot.parsed.clear()
                return checked
        applied = await self.client.list(
            REFS["ConfigMap"], namespace, {"app.kubernetes.io/managed-by": MANAGED_BY}
        )
        last_good = _applied_specs(applied, slot.parsed)
        key = content_hash([input_key, [[k, v.get("spec")] for k, v in sorted(last_good.items())]])
        if slot.checked is None or slot.checked_key != key:
            checked = _validate(bodies, last_good)
            # a valid result is stored under the key of the resources alone (see above)
            slot.checked_key, slot.checked = (key if checked[1] else input_key), checked
        return slot.checked

    async def _secret_problems(self, center: ContactCenter) -> st.Verdict | None:
        """Degraded when a Secret a trunk references is missing or lacks the key."""
        cache: dict[str, dict[str, Any] | None] = {}
        for i, trunk in enumerate(center.spec.trunks):
            for field_name, ref in (("username", trunk.username), ("password", trunk.password)):
                if ref is None:
                    continue
                if ref.name not in cache:
                    cache[ref.name] = await self.client.get(
                        REFS["Secret"], center.namespace, ref.name
                    )
                secret = cache[ref.name]
                path = f"spec.trunks[{i}].{field_name}"
                if secret is None:
                    return st.Verdict(
                        False,
                        st.SECRET_NOT_FOUND,
                        f"{path}: Secret {ref.name} does not exist in namespace "
                        f"{center.namespace} — create it with the key {ref.key}",
                        degraded=True,
                    )
                keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
                if ref.key not in keys:
                    return st.Verdict(
                        False,
                        st.SECRET_KEY_NOT_FOUND,
                        f"{path}: Secret {ref.name} has no key {ref.key} (it has: "
                        f"{', '.join(sorted(keys)) or 'none'}) — add the key or fix {path}.key",
                        degraded=True,
                    )
        return None

    async def _list_problems(self, models: Iterable[Resource]) -> dict[Key, st.Verdict]:
        """Degraded campaigns: a contact or do-not-call list that is missing or lacks its key.

        Such a campaign is left out of the render (the dialer would not start with a volume
        that does not exist); the rest of the tenant is applied.
        """
        out: dict[Key, st.Verdict] = {}
        cache: dict[tuple[str, str], dict[str, Any] | None] = {}
        for model in models:
            if not isinstance(model, DialerCampaign):
                continue
            spec = model.spec
            refs: list[tuple[str, str, str, str]] = []  # (kind, name, key, path)
            if spec.contact_list.config_map is not None:
                ref = spec.contact_list.config_map
                refs.append(("ConfigMap", ref.name, ref.key, "spec.contactList.configMap"))
            if spec.contact_list.secret is not None:
                ref2 = spec.contact_list.secret
                refs.append(("Secret", ref2.name, ref2.key, "spec.contactList.secret"))
            for i, dnc in enumerate(spec.do_not_call):
                refs.append(("ConfigMap", dnc.name, dnc.key, f"spec.doNotCall[{i}]"))
            for kind, name, key, path in refs:
                if (kind, name) not in cache:
                    cache[(kind, name)] = await self.client.get(REFS[kind], model.namespace, name)
                found = cache[(kind, name)]
                if found is None:
                    message = (
                        f"{path}.name: {kind} {name} does not exist in namespace "
                        f"{model.namespace} — create it with the key {key} "
                        f"(kubectl create {kind.lower()}"
                        f"{' generic' if kind == 'Secret' else ''} {name} --from-file={key})"
                    )
                else:
                    keys = set(found.get("data") or {}) | set(
                        found.get("binaryData" if kind == "ConfigMap" else "stringData") or {}
                    )
                    if key in keys:
                        continue
                    message = (
                        f"{path}.key: {kind} {name} has no key {key} (it has: "
                        f"{', '.join(sorted(keys)) or 'none'}) — add the key or fix {path}.key"
                    )
                out[(model.kind_name, model.name)] = st.Verdict(
                    False,
                    st.CONTACT_LIST_NOT_FOUND,
                    message + "; the campaign is not dialled until then",
                    degraded=True,
                )
                break
        return out

    async def _external_address(self, center: ContactCenter) -> str | None:
        """The SIP load balancer's address, once the cloud has assigned one."""
        if center.spec.freeswitch.exposure.mode is not ExposureMode.load_balancer:
            return None
        service = await self.client.get(
            REFS["Service"], center.namespace, child_name(center, "sip")
        )
        ingress = ((service or {}).get("status", {}).get("loadBalancer", {}) or {}).get(
            "ingress"
        ) or []
        if ingress and isinstance(ingress[0], Mapping):
            address = ingress[0].get("ip") or ingress[0].get("hostname")
            return str(address) if address else None
        return None

    async def _apply(
        self, tenant: Tenant, center: ContactCenter, slot: _Slot, full: bool = True
    ) -> ApplyResult:
        options = self.options
        address = await self._external_address(center)
        if address and not center.spec.freeswitch.exposure.external_address:
            options = replace(options, external_address=address)
        # the models rendered: validation's choice, less campaigns whose lists are missing
        kept = sorted((m.kind_name, m.name) for m in tenant.objects())
        key = content_hash([slot.checked_key, repr(options), kept])
        if slot.rendered_key != key:
            # new input: every child may change, and a workload must not roll before its
            # ConfigMap holds the new configuration, so this pass is a full one
            full = True
            rendered = render_tenant(tenant, options)
            rendered += generated_secrets(tenant, set(), self.password)
            blob = json.dumps([stamp(o) for o in rendered], separators=(",", ":")).encode()
            slot.rendered_key, slot.rendered = key, zlib.compress(blob, 1)
        desired = json.loads(zlib.decompress(slot.rendered))
        selector = {"app.kubernetes.io/managed-by": MANAGED_BY, TENANT_LABEL: center.name}
        kinds = CHILD_KINDS if full else WORKLOAD_KINDS
        if not full:
            desired = [o for o in desired if o["kind"] in WORKLOAD_KINDS]
        result = await apply_set(
            self.client, tenant.namespace, selector, desired, kinds=kinds, stamped=True
        )
        if result.changed:
            logger.info(
                "namespace %s: created %s, patched %s, deleted %s",
                tenant.namespace,
                result.created,
                result.patched,
                result.deleted,
            )
        return result

    async def _write_statuses(
        self,
        bodies: Mapping[Key, Mapping[str, Any]],
        verdicts: Mapping[Key, st.Verdict],
        tenant: Tenant,
        outcome: Outcome,
    ) -> None:
        now = self.clock()
        for key, body in bodies.items():
            verdict = verdicts[key]
            extra: dict[str, Any] = {}
            if key[0] == ContactCenter.kind_name:
                extra = {
                    "queues": len(tenant.queues),
                    "agents": sum(len(t.spec.agents) for t in tenant.teams.values()),
                }
            elif key[0] == "AgentTeam":
                agents = (body.get("spec") or {}).get("agents")
                extra = {"agents": len(agents) if isinstance(agents, list) else 0}
            new = st.status_patch(body, verdict, now, extra)
            if new is None:
                continue
            ref = REFS[key[0]]
            namespace = tenant.namespace
            try:
                await self.client.patch(ref, namespace, key[1], {"status": new}, "status")
            except ApiError as exc:
                if exc.status == 404:  # deleted meanwhile
                    continue
                raise
            outcome.status_writes += 1
            previous = (body.get("status") or {}).get("conditions") or []
            for kind, old, status in st.transitions(previous, new["conditions"]):
                if kind == st.PROGRESSING or (not previous and status == "False"):
                    continue
                if old == status and (kind == st.READY or status == "False"):
                    continue  # a new reason while still degraded is worth one Event, no more
                await self._event(body, kind, status, verdict)

    async def _event(
        self, body: Mapping[str, Any], kind: str, status: str, verdict: st.Verdict
    ) -> None:
        """A Kubernetes Event on the object for a condition that changed."""
        meta = body.get("metadata", {})
        now = self.clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        warning = (kind == st.DEGRADED and status == "True") or (
            kind == st.READY and status == "False"
        )
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta.get('name')}.",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": "Warning" if warning else "Normal",
            "reason": verdict.reason,
            "message": f"{kind}={status}: {verdict.message}"[:1024],
            "source": {"component": MANAGED_BY},
            "reportingComponent": MANAGED_BY,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.client.create(REFS["Event"], str(meta.get("namespace")), event)
        except ApiError as exc:  # an Event is a courtesy: never fail a reconcile for it
            logger.warning(
                "could not post an Event on %s/%s: %s", body.get("kind"), meta.get("name"), exc
            )
