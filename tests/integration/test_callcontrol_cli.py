"""``callmesh worker callcontrol`` as the operator's Deployment runs it: a real process
against the FreeSWITCH peer and a router, writing JSON lines, stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import yaml
from callmesh.workers.router.server import RouterServer

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

from esl_peer.peer import FakeFreeSwitch  # noqa: E402

NS = "t"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_tenant(path: Path) -> Path:
    docs = [
        {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "ContactCenter",
            "metadata": {"name": "c", "namespace": NS},
            "spec": {"sipDomain": "t.example.net", "timeZone": "UTC",
                     "numbers": [{"did": "+15550100", "flow": "f"}]},
        },
        {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "Queue",
            "metadata": {"name": "q", "namespace": NS},
            "spec": {"tiers": [{"level": 1, "teams": ["desk"]}]},
        },
        {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": "desk", "namespace": NS},
            "spec": {"agents": [{"id": "ann", "name": "Ann", "extension": "100"}]},
        },
        {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "IVRFlow",
            "metadata": {"name": "f", "namespace": NS},
            "spec": {"entry": "hi", "nodes": [
                {"id": "hi", "type": "play", "play": {"prompt": {"file": "hi.wav"}, "next": "q"}},
                {"id": "q", "type": "queue", "queue": {"queue": "q"}},
            ]},
        },
    ]  # fmt: skip
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def clean_env() -> dict[str, str]:
    """This environment without any ESL password (so each test says where it comes from)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMESH_ESL_PASSWORD")}
    return {**env, "PYTHONSAFEPATH": "1"}


async def until(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_worker_callcontrol_process_serves_a_call_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    config = write_tenant(tmp_path / "tenant.yaml")
    peer = FakeFreeSwitch(password="s3cret-from-the-secret")
    await peer.start()
    secret = tmp_path / "esl" / "password"  # as a Secret key mounted as a file
    secret.parent.mkdir()
    secret.write_text("s3cret-from-the-secret\n")
    router = RouterServer(config, address="127.0.0.1:0", reload_interval=0)
    router_port = await router.start()
    port = free_port()
    records = tmp_path / "interactions.jsonl"
    env = {
        **clean_env(),
        "CALLMESH_ROUTER": f"127.0.0.1:{router_port}",
        "CALLMESH_FREESWITCH": f"127.0.0.1:{peer.port}",
        "CALLMESH_ESL_PASSWORD_FILE": str(secret),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callmesh.cli", "worker", "callcontrol", "--config", str(config),
        "--host", "127.0.0.1", "--port", str(port), "--interactions", str(records),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await until(lambda: any(lst.authed and lst.call is None for lst in peer.listeners),
                    "the worker's inbound ESL connection")  # fmt: skip
        call = None
        for _ in range(200):  # the outbound port opens right after the inbound connection
            try:
                call = await peer.call("127.0.0.1", port, destination="+15550100",
                                       variables={"callmesh_flow": "f"})  # fmt: skip
                break
            except OSError:
                await asyncio.sleep(0.02)
        assert call is not None
        core = router.core
        assert core is not None
        await until(lambda: call.channel.uuid in core.contacts, "the call queued")
        call.channel.hangup("NORMAL_CLEARING")
        await until(lambda: records.exists() and records.read_text().strip(), "a JSON line")
        (line,) = records.read_text().splitlines()
        record = json.loads(line)
        assert record["call_id"] == call.channel.uuid and record["disposition"] == "abandoned-queue"
        assert record["queue"] == "q" and record["ivr_path"] == ["hi", "q"]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        assert proc.stdout is not None
        assert "event loop: uvloop" in (await proc.stdout.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await router.stop(0)
        await peer.stop()


async def test_worker_callcontrol_refuses_a_bad_config(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callmesh.cli", "worker", "callcontrol",
        "--config", str(tmp_path / "nope.yaml"),
        env={**os.environ, "PYTHONSAFEPATH": "1"}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"no such file" in err and b"--config" in err


async def test_worker_callcontrol_needs_the_esl_password(tmp_path: Path) -> None:
    config = write_tenant(tmp_path / "tenant.yaml")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callmesh.cli", "worker", "callcontrol", "--config", str(config),
        env=clean_env(), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"password is required" in err
    assert b"CALLMESH_ESL_PASSWORD" in err and b"--password-file" in err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, message in ((empty, b"is empty"), (tmp_path / "missing", b"cannot read it")):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callmesh.cli", "worker", "callcontrol",
            "--config", str(config), "--password-file", str(path),
            env=clean_env(), stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await proc.communicate()
        assert proc.returncode == 2 and message in err and str(path).encode() in err
