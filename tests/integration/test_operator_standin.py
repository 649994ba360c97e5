"""A Kubernetes API stand-in for the operator tests: kmock's emulator, extended to behave
like an API server where the operator depends on it; and tests that it does.

kmock (``kmock.KubernetesEmulator``) serves HTTP, parses requests and answers discovery
(``resources.load_bundled()`` plus the five callmesh CRDs). What a real API server does and
the emulator does not, :class:`ApiServer` adds:

- ``metadata.resourceVersion`` from one increasing counter, bumped only by real changes;
  ``uid``, ``creationTimestamp``, ``generation`` (1 on create, +1 on every spec change);
- 409 on creating an object that exists, 404 on patching or deleting one that does not;
- JSON merge patch (RFC 7386: ``null`` removes a key) and the status subresource (a patch
  to ``/status`` changes only status, a patch to the object never changes status);
- list and watch filtered by namespace and label selector (``a=b``, ``a!=b``, ``a``, ``!a``);
  watches resume from a ``resourceVersion`` and answer 410 Gone when it is too old;
- finalizers (deletionTimestamp first), and background garbage collection of dependents
  through ``ownerReferences``;
- ``generateName``;
- the workload controllers and the kubelet, as far as status goes: a StatefulSet or
  Deployment created or given a new spec reports all its replicas ready and updated
  ``ready_delay`` seconds later (``pods_ready = False`` stops that, and
  :meth:`ApiServer.set_status` writes any status, e.g. a crash-looping rollout);
- injected faults (:class:`Fault`): an HTTP error before or after the write (a lost
  response), a slow response, or a watch stream cut in the middle of an event.

The operator integration tests and ``bench/operator_scale.py`` load this module by path.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import aiohttp.web
import kmock
import pytest

from callmesh.api.crd import all_crds

ResKey = tuple[str, str, str]  # group, version, plural
#: Plurals whose status the stand-in's "controllers" fill in (see ApiServer.pods_ready).
WORKLOADS = ("statefulsets", "deployments")
ObjKey = tuple[ResKey, str, str]  # resource, namespace ('' if cluster-wide), name
_ANY = object()


@dataclass
class Fault:
    """One injected failure; matches requests by method, plural and subresource."""

    method: str  # GET, POST, PATCH, DELETE, or WATCH
    plural: str | None = None
    status: int = 500  # 0: no error (a delay only)
    times: int = 1
    delay: float = 0.0
    after_write: bool = False  # do the write, then answer with the error (a lost response)
    cut_after: int | None = None  # WATCH: cut the stream mid-event after this many events
    subresource: Any = _ANY
    hits: int = 0

    def matches(self, method: str, plural: str | None, subresource: str | None) -> bool:
        return (
            self.hits < self.times
            and self.method == method
            and (self.plural is None or self.plural == plural)
            and (self.subresource is _ANY or self.subresource == subresource)
        )


class _Error(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, ops: list[Any]) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test), as kopf sends for finalizers."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op["op"] == "add":
                parent.insert(index, op["value"])
            elif op["op"] == "remove":
                del parent[index]
            elif op["op"] == "replace":
                parent[index] = op["value"]
            elif op["op"] == "test" and parent[index] != op["value"]:
                raise _Error(422, "Invalid", f"test failed at {op['path']}")
        elif op["op"] in ("add", "replace"):
            parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[last]
        elif op["op"] == "test" and parent.get(last) != op["value"]:
            raise _Error(422, "Invalid", f"test failed at {op['path']}")
    return doc


def parse_selector(text: str | None) -> list[tuple[str, str, str | None]]:
    """``a=b,c!=d,e,!f`` -> [(op, key, value)]."""
    out: list[tuple[str, str, str | None]] = []
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            out.append(("!=", k.strip(), v.strip()))
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            out.append(("=", k.strip(), v.strip()))
        elif term.startswith("!"):
            out.append(("!", term[1:].strip(), None))
        else:
            out.append(("exists", term, None))
    return out


def selects(selector: Iterable[tuple[str, str, str | None]], labels: Mapping[str, str]) -> bool:
    for op, key, value in selector:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "!" and key in labels:
            return False
        if op == "exists" and key not in labels:
            return False
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiServer(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator with the API-server behaviour the operator relies on."""

    LOG_LIMIT = 200_000

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources.load_bundled()
        for crd in all_crds().values():
            spec = crd["spec"]
            version = spec["versions"][0]["name"]
            self.resources[f"{spec['group']}/{version}/{spec['names']['plural']}"] = {
                "kind": spec["names"]["kind"],
                "singular": spec["names"]["singular"],
                "namespaced": True,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                "shortnames": spec["names"].get("shortNames", []),
                "categories": spec["names"].get("categories", []),
                "subresources": ["status"],
            }
        self.store: dict[ObjKey, dict[str, Any]] = {}
        # indexes, as an API server's cache has them: by (resource, namespace) and by owner
        self.scopes: dict[ResKey, dict[str, dict[str, dict[str, Any]]]] = {}
        self.owned: dict[str, set[ObjKey]] = {}
        self._status_kinds: set[ResKey] | None = None
        self.gone: set[str] = set()  # uids of deleted objects
        self.version = 0
        self.log: collections.deque[tuple[int, ResKey, str, dict[str, str], bytes]] = (
            collections.deque(maxlen=self.LOG_LIMIT)
        )
        self.watchers: set[tuple[ResKey, str | None, Any, asyncio.Queue[tuple[int, bytes]]]] = set()
        self.faults: list[Fault] = []
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.changed = asyncio.Event()  # set on every write; tests wait on it
        self._names = 0
        # the controllers: workloads become ready after a short while, unless told not to
        self.pods_ready = True
        self.ready_delay = 0.05

    # -- test API -------------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Add faults; each fires ``times`` times on matching requests."""
        self.faults.extend(faults)

    def objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of a plural (any group), optionally in one namespace."""
        return [
            obj
            for res, scopes in self.scopes.items()
            if res[2] == plural
            for ns, objs in scopes.items()
            if namespace is None or ns == namespace
            for obj in objs.values()
        ]

    def find(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        for res, scopes in self.scopes.items():
            if res[2] == plural and name in scopes.get(namespace, {}):
                return scopes[namespace][name]
        return None

    def set_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Write ``status`` into an object (merged), as its controller would, with an event."""
        for res, scopes in self.scopes.items():
            if res[2] == plural and name in scopes.get(namespace, {}):
                obj = scopes[namespace][name]
                patched = merge_patch(obj, {"status": status})
                if patched != obj:
                    self._bump(patched)
                    self._put((res, namespace, name), patched)
                    self._emit("MODIFIED", res, patched)
                return
        raise KeyError(f"{plural} {namespace}/{name} does not exist")

    def ready_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The status a workload's controller reports once every replica runs and is ready."""
        replicas = int((obj.get("spec") or {}).get("replicas", 1))
        return {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "updatedReplicas": replicas,
            "currentReplicas": replicas,
        }

    def _rollout(self, key: ResKey, okey: ObjKey) -> None:
        if key[2] not in WORKLOADS:
            return

        def finish() -> None:
            obj = self.store.get(okey)
            if self.pods_ready and obj is not None:
                self.set_status(key[2], okey[1], okey[2], self.ready_status(obj))

        asyncio.get_running_loop().call_later(self.ready_delay, finish)

    @property
    def total_requests(self) -> int:
        return sum(self.counts.values())

    # -- request handling -----------------------------------------------------------------

    def _status_resources(self) -> set[ResKey]:
        if self._status_kinds is None:
            self._status_kinds = {
                (r.group, r.version, r.plural)
                for r in self.resources
                if "status" in self.resources[r].subresources
            }
        return self._status_kinds

    def _scope(self, key: ResKey, ns: str | None) -> list[dict[str, Any]]:
        scopes = self.scopes.get(key, {})
        if ns:
            return list(scopes.get(ns, {}).values())
        return [obj for objs in scopes.values() for obj in objs.values()]

    def _put(self, okey: ObjKey, obj: dict[str, Any]) -> None:
        self.store[okey] = obj
        self.scopes.setdefault(okey[0], {}).setdefault(okey[1], {})[okey[2]] = obj
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("uid"):
                self.owned.setdefault(ref["uid"], set()).add(okey)

    def _pop(self, okey: ObjKey) -> dict[str, Any]:
        obj = self.store.pop(okey)
        del self.scopes[okey[0]][okey[1]][okey[2]]
        for ref in obj["metadata"].get("ownerReferences") or []:
            self.owned.get(ref.get("uid"), set()).discard(okey)
        return obj

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        if res is None or request.action is None or res.plural is None:
            return await super()._handle(request)  # discovery and the rest: kmock's own
        key: ResKey = (res.group, res.version, res.plural)
        method = "WATCH" if request.action == kmock.action.WATCH else str(request.method.value)
        self.counts[(method, res.plural)] += 1
        fault = next(
            (f for f in self.faults if f.matches(method, res.plural, request.subresource)), None
        )
        if fault is not None:
            fault.hits += 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
        try:
            if (
                fault is not None
                and fault.status
                and not fault.after_write
                and fault.cut_after is None
            ):
                raise _Error(fault.status, "InjectedFault", "injected by the test")
            if method == "WATCH":
                return await self._watch(request, key, fault)
            result = self._serve(request, key)
            if fault is not None and fault.after_write and fault.status:
                raise _Error(fault.status, "InjectedFault", "injected after the write")
            return aiohttp.web.json_response(result, status=201 if method == "POST" else 200)
        except _Error as exc:
            return aiohttp.web.json_response(
                {
                    "apiVersion": "v1",
                    "kind": "Status",
                    "metadata": {},
                    "status": "Failure",
                    "code": exc.status,
                    "reason": exc.reason,
                    "message": exc.message,
                },
                status=exc.status,
            )

    def _serve(self, request: kmock.Request, key: ResKey) -> dict[str, Any]:
        ns = request.namespace or ""
        method = request.method.value
        if method == "GET" and request.name is None:
            selector = parse_selector(request.params.get("labelSelector"))
            items = [
                obj
                for obj in self._scope(key, request.namespace)
                if selects(selector, obj["metadata"].get("labels") or {})
            ]
            return {
                "apiVersion": "v1",
                "kind": "List",
                "metadata": {"resourceVersion": str(self.version)},
                "items": items,
            }
        if method == "GET":
            return self._existing(key, ns, request.name)
        if method == "POST":
            return self._create(key, ns, request.data)
        if method == "PATCH":
            return self._patch(key, ns, request.name, request.data, request.subresource)
        if method == "DELETE":
            return self._delete((key, ns, str(request.name)))
        raise _Error(405, "MethodNotAllowed", f"{method} is not served by the stand-in")

    def _existing(self, key: ResKey, ns: str, name: str | None) -> dict[str, Any]:
        obj = self.store.get((key, ns, str(name)))
        if obj is None:
            raise _Error(404, "NotFound", f'{key[2]} "{name}" not found')
        return obj

    def _bump(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def _create(self, key: ResKey, ns: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise _Error(400, "BadRequest", "the body is not a JSON object")
        obj = copy.deepcopy(dict(data))
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            self._names += 1
            meta["name"] = f"{meta['generateName']}{self._names:05d}"
        name = meta.get("name")
        if not name:
            raise _Error(422, "Invalid", "metadata.name: Required value")
        if ns:
            meta["namespace"] = ns
        if (key, ns, name) in self.store:
            raise _Error(409, "AlreadyExists", f'{key[2]} "{name}" already exists')
        if key in self._status_resources():
            obj.pop("status", None)
        if "stringData" in obj:  # as the API server stores Secrets
            import base64

            data_ = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data_[k] = base64.b64encode(str(v).encode()).decode()
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        self._bump(obj)
        self._put((key, ns, name), obj)
        self._emit("ADDED", key, obj)
        self._collect_if_orphaned((key, ns, name))
        self._rollout(key, (key, ns, name))
        return obj

    def _patch(
        self, key: ResKey, ns: str, name: str | None, data: Any, subresource: str | None
    ) -> dict[str, Any]:
        obj = self._existing(key, ns, name)
        has_status = key in self._status_resources()
        if isinstance(data, list):  # JSON patch
            patched = json_patch(obj, data)
            if has_status and subresource != "status":
                patched["status"] = copy.deepcopy(obj.get("status"))
                if patched["status"] is None:
                    del patched["status"]
        elif not isinstance(data, Mapping):
            raise _Error(400, "BadRequest", "the patch is not a JSON object")
        elif subresource == "status":
            patched = merge_patch(obj, {"status": data.get("status")})
        else:
            patch = dict(data)
            if has_status:
                patch.pop("status", None)
            patch.get("metadata", {}).pop("resourceVersion", None)
            patched = merge_patch(obj, patch)
        if patched == obj:
            return obj  # a no-op write changes nothing, not even the resourceVersion
        spec_of = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
        rolled = spec_of(patched) != spec_of(obj)
        if rolled:
            patched["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
        self._bump(patched)
        self._put((key, ns, str(name)), patched)
        meta = patched["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove((key, ns, str(name)))
        self._emit("MODIFIED", key, patched)
        if rolled:
            self._rollout(key, (key, ns, str(name)))
        return patched

    def _delete(self, okey: ObjKey) -> dict[str, Any]:
        obj = self._existing(*okey)
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = _now()
                self._bump(obj)
                self._emit("MODIFIED", okey[0], obj)
            return obj
        return self._remove(okey)

    def _collect_if_orphaned(self, okey: ObjKey) -> None:
        """The garbage collector also deletes an object created for an owner already gone."""
        refs = self.store[okey]["metadata"].get("ownerReferences") or []
        if refs and all(ref.get("uid") in self.gone for ref in refs):
            asyncio.get_running_loop().call_soon(
                lambda: self._delete(okey) if okey in self.store else None
            )

    def _remove(self, okey: ObjKey) -> dict[str, Any]:
        obj = self._pop(okey)
        self._bump(obj)
        self._emit("DELETED", okey[0], obj)
        self.gone.add(obj["metadata"].get("uid"))
        dependents = sorted(self.owned.pop(obj["metadata"].get("uid"), set()))
        for dependent in dependents:  # background cascading deletion
            if dependent in self.store:
                self._delete(dependent)
        return obj

    def _emit(self, kind: str, key: ResKey, obj: dict[str, Any]) -> None:
        line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
        version = int(obj["metadata"]["resourceVersion"])
        ns = obj["metadata"].get("namespace", "")
        labels = dict(obj["metadata"].get("labels") or {})
        self.log.append((version, key, ns, labels, line))
        for res, wns, selector, queue in self.watchers:
            if res == key and (not wns or wns == ns) and selects(selector, labels):
                queue.put_nowait((version, line))
        self.changed.set()

    async def _watch(
        self, request: kmock.Request, key: ResKey, fault: Fault | None
    ) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        selector = parse_selector(request.params.get("labelSelector"))
        since_text = request.params.get("resourceVersion") or "0"
        since = int(since_text) if since_text.isdigit() else 0
        timeout = float(request.params.get("timeoutSeconds") or 3600)
        queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        watcher = (key, request.namespace, tuple(selector), queue)
        ns = request.namespace
        # snapshot and subscribe with no await in between: nothing lost, nothing twice
        if since and self.log and since < self.log[0][0] - 1:
            backlog: list[bytes] | None = None
        elif since:
            backlog = [
                line
                for version, res, ons, labels, line in self.log
                if version > since
                and res == key
                and (not ns or ons == ns)
                and selects(selector, labels)
            ]
        else:
            backlog = [
                json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n"
                for obj in self._scope(key, ns)
                if selects(selector, obj["metadata"].get("labels") or {})
            ]
        self.watchers.add(watcher)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        sent = 0
        try:
            if backlog is None:
                gone = {
                    "type": "ERROR",
                    "object": {
                        "kind": "Status",
                        "code": 410,
                        "reason": "Expired",
                        "message": f"too old resource version: {since}",
                    },
                }
                await response.write(json.dumps(gone).encode() + b"\n")
                return response
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            pending = collections.deque(backlog)
            while True:
                if pending:
                    line = pending.popleft()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return response
                    try:
                        _, line = await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        return response
                if fault is not None and fault.cut_after is not None and sent >= fault.cut_after:
                    await response.write(line[: len(line) // 2])  # half an event, then gone
                    assert raw.transport is not None
                    raw.transport.close()
                    return response
                await response.write(line)
                sent += 1
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        finally:
            self.watchers.discard(watcher)


def kubeconfig(url: str, path: Any) -> None:
    """Write a kubeconfig pointing at ``url`` (plain HTTP, no credentials)."""
    import yaml

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": url}}],
        "users": [{"name": "standin", "user": {"token": "test"}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin"}}],
    }
    path.write_text(yaml.safe_dump(config))


async def apply_manifests(
    session: aiohttp.ClientSession, docs: Iterable[Mapping[str, Any]]
) -> None:
    """Create each manifest through the HTTP API, as ``kubectl create`` would."""
    for doc in docs:
        api = doc["apiVersion"]
        plural = _plural(doc["kind"])
        root = f"/apis/{api}" if "/" in api else f"/api/{api}"
        ns = doc["metadata"].get("namespace", "default")
        async with session.post(f"{root}/namespaces/{ns}/{plural}", json=doc) as resp:
            assert resp.status == 201, await resp.text()


def _plural(kind: str) -> str:
    irregular = {"IVRFlow": "ivrflows", "Secret": "secrets", "ConfigMap": "configmaps"}
    return irregular.get(kind, kind.lower() + "s")


# --- tests of the stand-in itself ------------------------------------------------------------


@pytest.fixture
async def api() -> Any:
    async with ApiServer() as server, kmock.Server(server):
        yield server


CM = "/api/v1/namespaces/ns/configmaps"


async def test_create_conflict_versions_and_generation(api: ApiServer) -> None:
    body = {"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}}
    async with api.post(CM, json=body) as resp:
        assert resp.status == 201
        created = await resp.json()
    assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
    async with api.post(CM, json=body) as resp:
        assert resp.status == 409
    patch = {"metadata": {"labels": {"x": None, "y": "2"}}}
    async with api.patch(f"{CM}/a", json=patch) as resp:
        patched = await resp.json()
    assert patched["metadata"]["labels"] == {"y": "2"}
    assert patched["metadata"]["generation"] == 1  # metadata only
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    async with api.patch(f"{CM}/a", json={"data": {"k": "w"}}) as resp:
        assert (await resp.json())["metadata"]["generation"] == 2
    version = api.version
    async with api.patch(f"{CM}/a", json={"data": {"k": "w"}}) as resp:
        assert resp.status == 200
    assert api.version == version  # a no-op patch writes nothing


async def test_label_selector_and_status_subresource(api: ApiServer) -> None:
    for name, labels in (("a", {"t": "1"}), ("b", {"t": "2"}), ("c", {})):
        async with api.post(CM, json={"metadata": {"name": name, "labels": labels}}):
            pass
    async with api.get(CM, params={"labelSelector": "t=1"}) as resp:
        assert [o["metadata"]["name"] for o in (await resp.json())["items"]] == ["a"]
    async with api.get(CM, params={"labelSelector": "t,t!=2"}) as resp:
        assert [o["metadata"]["name"] for o in (await resp.json())["items"]] == ["a"]
    queues = "/apis/callmesh.io/v1alpha1/namespaces/ns/queues"
    async with api.post(queues, json={"metadata": {"name": "q"}, "spec": {}, "status": {"x": 1}}):
        pass
    async with api.patch(f"{queues}/q", json={"status": {"a": 1}, "spec": {"b": 2}}) as resp:
        body = await resp.json()
    assert "status" not in body and body["metadata"]["generation"] == 2
    async with api.patch(f"{queues}/q/status", json={"status": {"a": 1}, "spec": {"c": 3}}) as resp:
        body = await resp.json()
    assert body["status"] == {"a": 1} and body["spec"] == {"b": 2}


async def test_owner_references_cascade_and_watch_resumes(api: ApiServer) -> None:
    async with api.post(CM, json={"metadata": {"name": "owner"}}) as resp:
        uid = (await resp.json())["metadata"]["uid"]
    async with api.get(CM) as resp:
        version = (await resp.json())["metadata"]["resourceVersion"]
    child = {"metadata": {"name": "child", "ownerReferences": [{"uid": uid, "name": "owner"}]}}
    async with api.post(CM, json=child):
        pass
    async with api.delete(f"{CM}/owner") as resp:
        assert resp.status == 200
    assert api.objects("configmaps") == []
    params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "1"}
    async with api.get(CM, params=params) as resp:
        events = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "child"),
        ("DELETED", "owner"),
        ("DELETED", "child"),
    ]


async def test_faults_fire_as_configured(api: ApiServer) -> None:
    api.inject(Fault("POST", "configmaps", status=500, after_write=True))
    async with api.post(CM, json={"metadata": {"name": "a"}}) as resp:
        assert resp.status == 500
    assert api.find("configmaps", "ns", "a") is not None  # written, response lost
    api.inject(Fault("WATCH", "configmaps", cut_after=0))
    async with api.get(CM, params={"watch": "true"}) as resp:
        with pytest.raises(
            (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, ValueError)
        ):
            text = await resp.text()
            [json.loads(line) for line in text.splitlines()]
