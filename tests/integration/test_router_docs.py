"""Every Python snippet in docs/router.md runs as written, against a real router and the
Kubernetes API stand-in, and the doc's CLI options are the command's."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import grpc.aio
import kmock
import pytest
import yaml
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.router.server import RouterServer
from typer.testing import CliRunner

DOC = Path(__file__).resolve().parents[2] / "docs" / "router.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
NS = "acme"


def run_doc() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    blocks = _BLOCK.findall(DOC.read_text())
    assert len(blocks) == 3
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


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


def write_tenant(path: Path, queue_spec: dict[str, Any]) -> Path:
    """A tenant of one queue, support, served by the team desk (Ann)."""
    path.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "callmesh.io/v1alpha1",
                    "kind": "Queue",
                    "metadata": {"name": "support", "namespace": NS},
                    "spec": {"tiers": [{"level": 1, "teams": ["desk"]}], **queue_spec},
                },
                {
                    "apiVersion": "callmesh.io/v1alpha1",
                    "kind": "AgentTeam",
                    "metadata": {"name": "desk", "namespace": NS},
                    "spec": {"agents": [{"id": "ann", "name": "Ann", "extension": "100"}]},
                },
            ]
        )
    )
    return path


async def test_wallboard_example(tmp_path: Path) -> None:
    config = write_tenant(
        tmp_path / "tenant.yaml", {"serviceLevel": {"percent": 80, "seconds": 20}}
    )
    server = RouterServer(config, address="127.0.0.1:0", reload_interval=0, kpi_window=600)
    port = await server.start()
    try:
        wallboard = run_doc()["wallboard"]
        lines = await wallboard(f"127.0.0.1:{port}")
        assert lines == ["support: 0 waiting, SL n/a (target 80% in 20 s), ASA 0 s, last 10 min"]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
            await stub.Cancel(router_pb2.CancelRequest(contact_id="c1"))
            await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c2", queue="support"))
        lines = await wallboard(f"127.0.0.1:{port}")
        assert lines == ["support: 1 waiting, SL 0% (target 80% in 20 s), ASA 0 s, last 10 min"]
    finally:
        await server.stop(0)


async def test_send_on_break_example(tmp_path: Path) -> None:
    config = write_tenant(tmp_path / "tenant.yaml", {})
    server = RouterServer(config, address="127.0.0.1:0", reload_interval=0)
    port = await server.start()
    try:
        assert server.core is not None
        server.core.open_session("ann", True)
        send_on_break = run_doc()["send_on_break"]
        assert await send_on_break(f"127.0.0.1:{port}", "ann", "lunch") == "AGENT_STATE_NOT_READY"
        assert server.core.presence["ann"][1] == "lunch"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await send_on_break(f"127.0.0.1:{port}", "zed", "lunch")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(0)


async def test_publish_once_example() -> None:
    standin = _standin()
    async with standin.ApiServer() as api, kmock.Server(api) as http:
        base = f"/apis/callmesh.io/v1alpha1/namespaces/{NS}"
        for plural, name in (("queues", "support"), ("agentteams", "desk")):
            async with api.post(f"{base}/{plural}", json={"metadata": {"name": name}}) as resp:
                assert resp.status == 201
        publish_once = run_doc()["publish_once"]
        assert await publish_once(str(http.url)) == 2
        assert api.find("queues", NS, "support")["status"] == {
            "waiting": 3,
            "serviceLevel": "82.5%",
        }
        assert api.find("agentteams", NS, "desk")["status"] == {"loggedIn": 7}


def test_documented_options_are_the_commands() -> None:
    from callmesh.cli import app

    result = CliRunner().invoke(app, ["worker", "router", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = re.findall(r"^\| `(--[a-z-]+)", DOC.read_text(), re.MULTILINE)
    assert len(rows) >= 7
    for option in rows:
        assert option in result.output, option
    assert "--no-publish-status" in result.output
