"""StatusPublisher over real HTTP against the Kubernetes API stand-in (kmock, loopback).

The stand-in (``test_operator_standin.py``) applies JSON merge patches to the status
subresource as an API server does and answers 404 for a missing object; faults inject 500s.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import pytest
from callmesh.workers import kubestatus
from callmesh.workers.kubestatus import KubeStatusApi, StatusPublisher


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
Fault = standin.Fault
NS = "tenant-a"
TOKEN = "s3cr3t-token-value"


class RecordingApi(standin.ApiServer):  # type: ignore[misc,name-defined]
    """The stand-in, also keeping each status patch's headers and body."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.patches: list[tuple[str, dict[str, str], Any]] = []

    async def _handle(self, request: kmock.Request) -> Any:
        if request.subresource == "status" and request.method.value == "PATCH":
            self.patches.append((request.name, dict(request.headers), request.data))
        return await super()._handle(request)


@pytest.fixture
async def api() -> AsyncIterator[tuple[Any, KubeStatusApi]]:
    async with RecordingApi() as server, kmock.Server(server) as http:
        client = KubeStatusApi(str(http.url), token=lambda: TOKEN, verify=False)
        base = f"/apis/callmesh.io/v1alpha1/namespaces/{NS}"
        for plural, name in (("queues", "support"), ("queues", "sales"), ("agentteams", "desk")):
            body = {"metadata": {"name": name}, "spec": {}}
            async with server.post(f"{base}/{plural}", json=body) as resp:
                assert resp.status == 201
        # The operator's part of the status, which the publisher must leave alone.
        server.set_status(
            "queues",
            NS,
            "support",
            {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
        )
        yield server, client
        await client.aclose()


def publisher(client: KubeStatusApi) -> StatusPublisher:
    pub = StatusPublisher(NS, api=client, interval=0.05)
    pub.retry_wait = lambda _state: 0.01  # type: ignore[assignment,method-assign]
    return pub


async def test_patches_only_kpi_fields_as_merge_patch(api: tuple[Any, KubeStatusApi]) -> None:
    server, client = api
    pub = publisher(client)
    pub.set("queues", "support", {"waiting": 3, "serviceLevel": "82.5%"})
    pub.set("agentteams", "desk", {"loggedIn": 7})
    await pub.flush()
    status = server.find("queues", NS, "support")["status"]
    assert status["waiting"] == 3 and status["serviceLevel"] == "82.5%"
    assert status["observedGeneration"] == 1 and status["conditions"][0]["type"] == "Ready"
    assert server.find("agentteams", NS, "desk")["status"] == {"loggedIn": 7}
    name, headers, body = server.patches[0]
    assert name == "support"
    assert headers["Content-Type"] == "application/merge-patch+json"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert body == {"status": {"waiting": 3, "serviceLevel": "82.5%"}}
    assert pub.sent_count == 2 and pub.failures == 0

    # Unchanged values are not sent again; a changed one is, with None removing a field.
    await pub.flush()
    assert len(server.patches) == 2
    pub.set("queues", "support", {"waiting": 3})
    await pub.flush()
    assert len(server.patches) == 2
    pub.set("queues", "support", {"waiting": 0, "serviceLevel": None})
    await pub.flush()
    status = server.find("queues", NS, "support")["status"]
    assert status["waiting"] == 0 and "serviceLevel" not in status
    assert status["conditions"][0]["type"] == "Ready"


async def test_operator_fields_are_refused(api: tuple[Any, KubeStatusApi]) -> None:
    _, client = api
    with pytest.raises(ValueError, match="conditions belong to the operator"):
        publisher(client).set("queues", "support", {"conditions": []})


async def test_500_is_retried_with_backoff_then_left_pending(
    api: tuple[Any, KubeStatusApi], caplog: pytest.LogCaptureFixture
) -> None:
    server, client = api
    pub = publisher(client)
    # Two failures, then success within the same tick.
    server.inject(Fault("PATCH", "queues", status=500, times=2, subresource="status"))
    pub.set("queues", "support", {"waiting": 1})
    await pub.flush()
    assert server.find("queues", NS, "support")["status"]["waiting"] == 1
    assert pub.failures == 2 and pub.sent_count == 1
    # Failing for longer than the tick's attempts: counted, logged, kept for the next tick.
    server.inject(Fault("PATCH", "queues", status=503, times=3, subresource="status"))
    pub.set("queues", "support", {"waiting": 2})
    pub.set("queues", "sales", {"waiting": 9})
    with caplog.at_level(logging.WARNING, "callmesh.workers.kubestatus"):
        await pub.flush()
    assert pub.failures == 5
    # The tick ended there: "sales" was not even tried, both wait for the next tick.
    assert pub.pending() == [("queues", "support"), ("queues", "sales")]
    assert [name for name, _, _ in server.patches].count("sales") == 0
    assert "queues/support in tenant-a not published (HTTP 503)" in caplog.text
    assert "injected by the test" in caplog.text  # the API server's message
    assert TOKEN not in caplog.text
    await pub.flush()
    assert server.find("queues", NS, "support")["status"]["waiting"] == 2
    assert server.find("queues", NS, "sales")["status"]["waiting"] == 9
    assert pub.pending() == []


async def test_404_is_logged_once_and_the_key_dropped(
    api: tuple[Any, KubeStatusApi], caplog: pytest.LogCaptureFixture
) -> None:
    server, client = api
    pub = publisher(client)
    with caplog.at_level(logging.WARNING, "callmesh.workers.kubestatus"):
        pub.set("queues", "gone", {"waiting": 1})
        pub.set("queues", "sales", {"waiting": 4})
        await pub.flush()
        assert pub.failures == 1 and pub.sent_count == 1
        assert server.find("queues", NS, "sales")["status"]["waiting"] == 4
        pub.set("queues", "gone", {"waiting": 2})  # the worker keeps setting it
        await pub.flush()
        await pub.flush()
    assert caplog.text.count("queues/gone in tenant-a is gone (404)") == 1
    assert [name for name, _, _ in server.patches].count("gone") == 1  # not sent again
    assert pub.pending() == []


async def test_403_names_the_rbac_it_needs(
    api: tuple[Any, KubeStatusApi], caplog: pytest.LogCaptureFixture
) -> None:
    server, client = api
    pub = publisher(client)
    server.inject(Fault("PATCH", "agentteams", status=403, times=1, subresource="status"))
    pub.set("agentteams", "desk", {"loggedIn": 2})
    with caplog.at_level(logging.WARNING, "callmesh.workers.kubestatus"):
        await pub.flush()
    assert "needs 'patch' on agentteams/status in tenant-a" in caplog.text
    assert pub.failures == 1  # not retried within the tick: it is not transient
    assert TOKEN not in caplog.text


async def test_run_publishes_every_interval_until_cancelled(
    api: tuple[Any, KubeStatusApi],
) -> None:
    server, client = api
    pub = publisher(client)
    task = asyncio.create_task(pub.run())
    try:
        for waiting in (5, 6):
            pub.set("queues", "sales", {"waiting": waiting})
            for _ in range(200):
                status = server.find("queues", NS, "sales").get("status", {})
                if status.get("waiting") == waiting:
                    break
                await asyncio.sleep(0.01)
            assert status.get("waiting") == waiting
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_no_answer_is_transient(caplog: pytest.LogCaptureFixture) -> None:
    # A port nobody listens on: connection refused, retried, counted, kept pending.
    client = KubeStatusApi("http://127.0.0.1:9", verify=False, timeout=1.0)
    pub = publisher(client)
    pub.set("queues", "support", {"waiting": 1})
    with caplog.at_level(logging.WARNING, "callmesh.workers.kubestatus"):
        await pub.flush()
    await client.aclose()
    assert pub.failures == pub.attempts and pub.pending() == [("queues", "support")]
    assert "(HTTP no answer)" in caplog.text


def test_in_cluster_publisher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubestatus, "SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("CALLMESH_NAMESPACE", raising=False)
    assert kubestatus.in_cluster_publisher() is None  # not in a pod
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    assert kubestatus.in_cluster_publisher() is None  # no service-account token
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "namespace").write_text("from-sa\n")
    pub = kubestatus.in_cluster_publisher(interval=3.0)
    assert pub is not None
    assert pub.namespace == "from-sa" and pub.interval == 3.0
    assert pub.api.base_url == "https://10.96.0.1:6443"
    assert pub.api._auth() == {"Authorization": f"Bearer {TOKEN}"}
    monkeypatch.setenv("CALLMESH_NAMESPACE", "from-env")
    pub = kubestatus.in_cluster_publisher()
    assert pub is not None and pub.namespace == "from-env"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    pub = kubestatus.in_cluster_publisher()
    assert pub is not None and pub.api.base_url == "https://[fd00::1]:6443"


def test_bad_arguments() -> None:
    api = KubeStatusApi("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="namespace is empty"):
        StatusPublisher("", api=api)
    with pytest.raises(ValueError, match="interval is 0"):
        StatusPublisher(NS, api=api, interval=0)
