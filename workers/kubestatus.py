"""Publish a worker's live KPIs into the status subresource of its tenant's custom resources.

A worker (the router, the dialer) knows figures the operator cannot see: contacts waiting,
the service level, agents logged in, a campaign's abandon rate. :class:`StatusPublisher`
keeps the latest values per resource (:meth:`StatusPublisher.set`) and, every ``interval``
seconds, sends those that changed since they were last sent as a JSON merge patch
(``application/merge-patch+json``) to

    /apis/callmesh.io/v1alpha1/namespaces/{namespace}/{plural}/{name}/status

with only the KPI fields: ``conditions`` and ``observedGeneration`` belong to the operator and
are never sent (a merge patch leaves the fields it does not name alone). A field set to None
is removed from the status.

Failures never stop the worker: a transient one (a connection error, 429, 5xx) is retried with
exponential backoff within the tick, then left pending for the next tick (with every
resource not tried yet in that tick); every failure is
counted (:attr:`StatusPublisher.failures`) and logged with the HTTP status and the API
server's message, never the token. A 404 means the resource is gone: it is logged once and the
key dropped; values set for it later are sent again only every :data:`GONE_RETRY` seconds (the
resource may be created again), without logging. A 401 or 403 names the RBAC it needs.

:func:`in_cluster_publisher` builds one from the pod's service account (token, CA, namespace)
and returns None outside a pod, so a worker run on a laptop publishes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

__all__ = [
    "GONE_RETRY",
    "GROUP_VERSION",
    "SERVICE_ACCOUNT_DIR",
    "KubeStatusApi",
    "KubeStatusError",
    "StatusPublisher",
    "in_cluster_publisher",
]

log = logging.getLogger("callmesh.workers.kubestatus")

GROUP_VERSION = "callmesh.io/v1alpha1"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where the kubelet mounts the pod's service-account token, CA and namespace."""
GONE_RETRY = 300.0
"""Seconds before values for a resource that answered 404 are sent again."""
TOKEN_REFRESH = 60.0
"""Seconds a read token is reused (the kubelet rotates bound tokens well before expiry)."""
_OWNED_BY_OPERATOR = frozenset({"conditions", "observedGeneration"})


class KubeStatusError(Exception):
    """A status patch failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying soon: no answer, 429 or a server error."""
        return self.status == 0 or self.status == 429 or self.status >= 500


def _message(response: httpx.Response) -> str:
    """The API server's own message (a Status object), or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:500]
    return response.text[:200]


class KubeStatusApi:
    """The HTTP side: merge-patches a custom resource's status subresource.

    Args:
        base_url: the API server, e.g. ``https://10.0.0.1:443`` (tests: a loopback stand-in).
        token: returns the bearer token, or None for no Authorization header; called at most
            every :data:`TOKEN_REFRESH` seconds, so a rotated token file is picked up.
        verify: an SSL context (the cluster CA) or False for plain http in tests.
        timeout: seconds per request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: Callable[[], str | None] = lambda: None,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._token_value: str | None = None
        self._token_read = -math.inf
        self._client = httpx.AsyncClient(base_url=self.base_url, verify=verify, timeout=timeout)

    @classmethod
    def in_cluster(cls, sa_dir: Path | None = None) -> KubeStatusApi:
        """The API server of the pod this runs in, with its service-account token and CA.

        Raises:
            KubeStatusError: not in a pod (no KUBERNETES_SERVICE_HOST or no token file).
        """
        sa = SERVICE_ACCOUNT_DIR if sa_dir is None else sa_dir
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        token_file = sa / "token"
        if not host or not token_file.is_file():
            raise KubeStatusError(
                0,
                "not running in a pod: KUBERNETES_SERVICE_HOST or the service-account token"
                f" ({token_file}) is missing",
            )
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:  # IPv6
            host = f"[{host}]"
        ca = sa / "ca.crt"
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca)) if ca.is_file() else True
        )
        return cls(
            f"https://{host}:{port}",
            token=lambda: token_file.read_text().strip(),
            verify=verify,
        )

    def _auth(self, force: bool = False) -> dict[str, str]:
        now = time.monotonic()
        if force or now - self._token_read > TOKEN_REFRESH:
            self._token_value = self._token()
            self._token_read = now
        return {"Authorization": f"Bearer {self._token_value}"} if self._token_value else {}

    async def patch_status(
        self, namespace: str, plural: str, name: str, fields: Mapping[str, object]
    ) -> None:
        """Merge ``fields`` into the resource's status.

        Raises:
            KubeStatusError: the API server refused, or did not answer (status 0).
        """
        path = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/{plural}/{name}/status"
        body = json.dumps({"status": dict(fields)}).encode()
        headers = {"Content-Type": "application/merge-patch+json"}
        for attempt in range(2):
            try:
                response = await self._client.patch(
                    path, content=body, headers={**headers, **self._auth(force=attempt > 0)}
                )
            except httpx.HTTPError as exc:
                raise KubeStatusError(0, f"no answer from the API server: {exc!r}") from None
            if response.status_code == 401 and attempt == 0:
                continue  # the token may have been rotated: read it again, once
            if response.status_code >= 400:
                raise KubeStatusError(response.status_code, _message(response))
            return

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


Key = tuple[str, str]  # plural, name


class StatusPublisher:
    """Publishes live KPI fields into custom resources' status (see the module docstring).

    Args:
        namespace: the worker's own namespace (its tenant).
        api: where patches go (default: the in-cluster API server, see
            :meth:`KubeStatusApi.in_cluster`).
        interval: seconds between ticks; at most one patch per resource per tick.
    """

    def __init__(
        self, namespace: str, *, api: KubeStatusApi | None = None, interval: float = 10.0
    ) -> None:
        if not namespace:
            raise ValueError("namespace is empty: pass the worker's namespace")
        if not (interval > 0 and math.isfinite(interval)):
            raise ValueError(f"interval is {interval}: use a number of seconds above 0")
        self.namespace = namespace
        self.api = api if api is not None else KubeStatusApi.in_cluster()
        self.interval = interval
        self.sent_count = 0
        """Patches the API server accepted."""
        self.failures = 0
        """Patches that failed (each attempt counts)."""
        self._latest: dict[Key, dict[str, object]] = {}
        self._sent: dict[Key, dict[str, object]] = {}
        self._gone: dict[Key, float] = {}  # key -> when the 404 came
        self._last_error: dict[Key, str] = {}
        self.retry_wait = wait_exponential(multiplier=0.2, min=0.2, max=5.0)
        self.attempts = 3

    def set(self, plural: str, name: str, fields: Mapping[str, object]) -> None:
        """Record the latest values (camelCase status fields) of one resource.

        They are sent at the next tick if they differ from what was last sent. ``None``
        removes a field. ``conditions`` and ``observedGeneration`` are the operator's.

        Raises:
            ValueError: a field the operator owns.
        """
        owned = _OWNED_BY_OPERATOR.intersection(fields)
        if owned:
            raise ValueError(
                f"{plural}/{name}: {', '.join(sorted(owned))} belong to the operator; publish"
                " only KPI fields"
            )
        self._latest.setdefault((plural, name), {}).update(fields)

    def pending(self) -> list[Key]:
        """The resources whose latest values have not been sent yet (in set order)."""
        now = time.monotonic()
        out = []
        for key, fields in self._latest.items():
            gone = self._gone.get(key)
            if gone is not None and now - gone < GONE_RETRY:
                continue
            if self._sent.get(key) != fields:
                out.append(key)
        return out

    async def flush(self) -> None:
        """Send every pending resource now (what one tick does).

        A resource whose patch still fails transiently after :attr:`attempts` tries ends the
        tick: the API server is unwell, and the resources not tried yet wait, as it does,
        for the next tick (a tick never takes longer than one resource's retries).
        """
        for key in self.pending():
            fields = dict(self._latest[key])
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.attempts),
                    wait=self.retry_wait,
                    retry=retry_if_exception_type(_Transient),
                    reraise=True,
                ):
                    with attempt:
                        await self._patch(key, fields)
            except KubeStatusError as exc:
                self._failed(key, exc)
                if isinstance(exc, _Transient):
                    break  # the API server is struggling: the rest waits for the next tick
                continue
            self.sent_count += 1
            self._sent[key] = fields
            self._last_error.pop(key, None)
            if self._gone.pop(key, None) is not None:
                log.info("%s/%s is back: its status is published again", *key)

    async def _patch(self, key: Key, fields: dict[str, object]) -> None:
        plural, name = key
        try:
            await self.api.patch_status(self.namespace, plural, name, fields)
        except KubeStatusError as exc:
            if exc.transient:
                self.failures += 1
                raise _Transient(exc.status, str(exc)) from None
            raise

    def _failed(self, key: Key, exc: KubeStatusError) -> None:
        plural, name = key
        where = f"{plural}/{name} in {self.namespace}"
        if isinstance(exc, _Transient):  # already counted per attempt
            message = (
                f"status of {where} not published (HTTP {exc.status or 'no answer'}): {exc};"
                " retried at the next tick"
            )
        else:
            self.failures += 1
            if exc.status == 404:
                if key not in self._gone:
                    log.warning("%s is gone (404): its status is no longer published", where)
                self._gone[key] = time.monotonic()
                self._sent.pop(key, None)
                self._latest.pop(key, None)
                return
            if exc.status in (401, 403):
                message = (
                    f"status of {where} not published (HTTP {exc.status}): {exc}; the pod's"
                    f" service account needs 'patch' on {plural}/status in {self.namespace}"
                )
            else:
                message = f"status of {where} not published (HTTP {exc.status}): {exc}"
        if self._last_error.get(key) != message:
            log.warning("%s", message)
            self._last_error[key] = message

    async def run(self) -> None:
        """Publish every ``interval`` seconds until cancelled (a failure never ends it)."""
        try:
            while True:
                try:
                    await self.flush()
                except Exception:  # pragma: no cover - a bug: keep publishing
                    self.failures += 1
                    log.exception("status publishing failed")
                await asyncio.sleep(self.interval)
        finally:
            await self.api.aclose()


class _Transient(KubeStatusError):
    """A failure worth retrying within the tick."""


def in_cluster_publisher(interval: float = 10.0) -> StatusPublisher | None:
    """A publisher for the pod this runs in, or None outside a pod.

    None when KUBERNETES_SERVICE_HOST is unset or there is no service-account token. The
    namespace is ``CALLMESH_NAMESPACE`` if set, else the service account's namespace file.
    """
    sa = SERVICE_ACCOUNT_DIR
    if not os.environ.get("KUBERNETES_SERVICE_HOST") or not (sa / "token").is_file():
        log.debug("not in a pod (no KUBERNETES_SERVICE_HOST or token): no status publishing")
        return None
    namespace = os.environ.get("CALLMESH_NAMESPACE", "").strip()
    if not namespace:
        try:
            namespace = (sa / "namespace").read_text().strip()
        except OSError:
            namespace = ""
    if not namespace:
        log.warning(
            "no status publishing: set CALLMESH_NAMESPACE (the service account's namespace"
            " file %s is missing)",
            sa / "namespace",
        )
        return None
    return StatusPublisher(namespace, api=KubeStatusApi.in_cluster(sa), interval=interval)
