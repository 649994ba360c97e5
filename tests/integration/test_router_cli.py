"""``callmesh worker router`` as the operator's Deployment runs it: serves, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_router_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "tenant.yaml"
    config.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "callmesh.io/v1alpha1",
                    "kind": "Queue",
                    "metadata": {"name": "q", "namespace": "t"},
                    "spec": {"tiers": [{"level": 1, "teams": ["desk"]}]},
                },
                {
                    "apiVersion": "callmesh.io/v1alpha1",
                    "kind": "AgentTeam",
                    "metadata": {"name": "desk", "namespace": "t"},
                    "spec": {"agents": [{"id": "ann", "name": "Ann", "extension": "100"}]},
                },
            ]
        )
    )
    port = free_port()
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "callmesh.cli",
            "worker",
            "router",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--grace",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    break
                except grpc.RpcError:
                    assert time.monotonic() < deadline, "the router never became healthy"
                    time.sleep(0.1)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert "stopping" in out
        assert "event loop: uvloop" in out  # the default where uvloop is installed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_config_exits_2_with_the_problem(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "callmesh.cli",
            "worker",
            "router",
            "--config",
            str(tmp_path / "missing.yaml"),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONSAFEPATH": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "no such file" in run.stderr


def test_worker_router_publishes_status_in_a_pod_unless_told_not_to(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from callmesh.workers import kubestatus
    from callmesh.workers.router import server as router_server
    from typer.testing import CliRunner

    from callmesh.cli import app

    config = tmp_path / "tenant.yaml"
    config.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "callmesh.io/v1alpha1",
                    "kind": "Queue",
                    "metadata": {"name": "q", "namespace": "t"},
                    "spec": {"tiers": [{"level": 1, "teams": ["desk"]}]},
                },
                {
                    "apiVersion": "callmesh.io/v1alpha1",
                    "kind": "AgentTeam",
                    "metadata": {"name": "desk", "namespace": "t"},
                    "spec": {"agents": [{"id": "ann", "name": "Ann", "extension": "100"}]},
                },
            ]
        )
    )
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("token")
    (sa / "namespace").write_text("t")
    monkeypatch.setattr(kubestatus, "SERVICE_ACCOUNT_DIR", sa)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    seen: list[Any] = []

    async def run_router(server: Any) -> None:  # instead of serving until SIGTERM
        seen.append((server.publisher, server.kpi_window))
        if server.publisher is not None:
            await server.publisher.api.aclose()

    monkeypatch.setattr(router_server, "run_router", run_router)
    base = ["worker", "router", "--config", str(config), "--port", "0"]
    result = CliRunner().invoke(app, [*base, "--status-interval", "3", "--kpi-window", "60"])
    assert result.exit_code == 0, result.output
    publisher, window = seen.pop()
    assert publisher.namespace == "t" and publisher.interval == 3.0 and window == 60.0
    result = CliRunner().invoke(app, [*base, "--no-publish-status"])
    assert result.exit_code == 0, result.output
    assert seen.pop() == (None, 900.0)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")  # not in a pod: nothing to publish to
    result = CliRunner().invoke(app, base)
    assert result.exit_code == 0, result.output
    assert seen.pop()[0] is None
