"""The operator's only door to the Kubernetes API: a small async client over aiohttp.

kopf watches and calls the handlers; everything the reconciler reads and writes goes through
:class:`KubeClient`, built from the same :class:`kopf.ConnectionInfo` kopf logged in with, so
a test points both at an API stand-in with one kubeconfig. Writes are JSON merge patches
(``application/merge-patch+json``), as ``kubectl patch --type=merge`` sends them.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import kopf


@dataclass(frozen=True)
class Ref:
    """A resource type: API group, version, plural and kind."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        """``group/version``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version


CORE = ""
#: Every resource type the operator reads or writes, by kind.
REFS: dict[str, Ref] = {
    ref.kind: ref
    for ref in (
        Ref(CORE, "v1", "serviceaccounts", "ServiceAccount"),
        Ref(CORE, "v1", "configmaps", "ConfigMap"),
        Ref(CORE, "v1", "secrets", "Secret"),
        Ref(CORE, "v1", "services", "Service"),
        Ref(CORE, "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
        Ref(CORE, "v1", "events", "Event"),
        Ref("apps", "v1", "statefulsets", "StatefulSet"),
        Ref("apps", "v1", "deployments", "Deployment"),
        Ref("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
        Ref("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
        Ref("rbac.authorization.k8s.io", "v1", "roles", "Role"),
        Ref("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
        Ref("callmesh.io", "v1alpha1", "contactcenters", "ContactCenter"),
        Ref("callmesh.io", "v1alpha1", "queues", "Queue"),
        Ref("callmesh.io", "v1alpha1", "agentteams", "AgentTeam"),
        Ref("callmesh.io", "v1alpha1", "ivrflows", "IVRFlow"),
        Ref("callmesh.io", "v1alpha1", "dialercampaigns", "DialerCampaign"),
    )
}


class ApiError(Exception):
    """A failed API request: the HTTP status and the server's reason and message."""

    def __init__(self, status: int, reason: str, message: str, method: str, path: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{method} {path}: HTTP {status} {reason}: {message}")

    @property
    def retriable(self) -> bool:
        """Conflicts, throttling and server errors pass; the request may be retried."""
        return self.status in (409, 429) or self.status >= 500


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if not info.server.startswith("https"):
        return False
    context = ssl.create_default_context(
        cafile=info.ca_path,
        cadata=base64.b64decode(info.ca_data).decode() if info.ca_data else None,
    )
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = info.certificate_path, info.private_key_path
    if info.certificate_data and info.private_key_data:
        # ssl loads client certificates from files only
        files = []
        for data in (info.certificate_data, info.private_key_data):
            handle = tempfile.NamedTemporaryFile(suffix=".pem")  # noqa: SIM115 - closed below
            handle.write(base64.b64decode(data))
            handle.flush()
            files.append(handle)
        context.load_cert_chain(files[0].name, files[1].name)
        for handle in files:
            handle.close()
    elif cert and key:
        context.load_cert_chain(cert, key)
    return context


def _headers(info: kopf.ConnectionInfo) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "callmesh-operator"}
    if info.token:
        headers["Authorization"] = f"Bearer {info.token}"
    elif info.username and info.password:
        basic = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    return headers


class KubeClient:
    """JSON over HTTP to the API server: get, list, create, merge-patch, delete.

    ``requests`` counts the requests made, for the benchmark and for tests that check that
    unchanged input writes nothing (``writes`` counts create, patch and delete).
    """

    def __init__(self, info: kopf.ConnectionInfo, timeout: float = 30.0) -> None:
        self._base = info.server.rstrip("/")
        self._ssl = _ssl_context(info)
        self._headers = _headers(info)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.writes = 0

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _path(
        self, ref: Ref, namespace: str | None, name: str | None = None, sub: str | None = None
    ) -> str:
        root = f"/apis/{ref.group}/{ref.version}" if ref.group else f"/api/{ref.version}"
        parts = [root]
        if namespace:
            parts.append(f"namespaces/{quote(namespace)}")
        parts.append(ref.plural)
        if name:
            parts.append(quote(name))
        if sub:
            parts.append(sub)
        return "/".join(parts)

    async def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=32),
            )
        url = self._base + path + (f"?{urlencode(params)}" if params else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        self.requests += 1
        if method != "GET":
            self.writes += 1
        try:
            async with self._session.request(method, url, data=data, headers=headers) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    try:
                        status = json.loads(text)
                        reason = str(status.get("reason") or resp.reason)
                        message = str(status.get("message") or "")
                    except (ValueError, AttributeError):
                        reason, message = str(resp.reason), text[:200]
                    raise ApiError(resp.status, reason, message, method, path)
                return json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(
                503, type(exc).__name__, str(exc) or "no response", method, path
            ) from exc

    async def get(self, ref: Ref, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            result: dict[str, Any] = await self._request("GET", self._path(ref, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def list(
        self, ref: Ref, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Objects of ``ref`` in ``namespace`` (every namespace when None) matching ``labels``."""
        params = (
            {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else {}
        )
        result = await self._request("GET", self._path(ref, namespace), params=params)
        items: list[dict[str, Any]] = result.get("items") or []
        for item in items:  # lists omit each item's apiVersion and kind
            item.setdefault("apiVersion", ref.api_version)
            item.setdefault("kind", ref.kind)
        return items

    async def create(self, ref: Ref, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create the object; raises ApiError 409 when it exists."""
        result: dict[str, Any] = await self._request("POST", self._path(ref, namespace), body)
        return result

    async def patch(
        self,
        ref: Ref,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the object (or its ``status`` subresource)."""
        result: dict[str, Any] = await self._request(
            "PATCH",
            self._path(ref, namespace, name, subresource),
            patch,
            content_type="application/merge-patch+json",
        )
        return result

    async def delete(self, ref: Ref, namespace: str, name: str) -> bool:
        """Delete the object (its dependents in the background); False if it was gone."""
        try:
            await self._request(
                "DELETE",
                self._path(ref, namespace, name),
                {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True
