"""Operator at scale: 1,000 Queues and 200 AgentTeams across 100 namespaces.

Starts the API stand-in of the integration tests (kmock extended into an API server,
tests/integration/test_operator_standin.py) on a loopback port, creates the tenants through
its HTTP API, then starts ``callmesh operator --all-namespaces`` as a separate process
(logged in through a kubeconfig that points at the stand-in) and measures:

- the time from the operator's start until every object reports ``Ready`` at its current
  generation;
- the API requests the operator made to get there (as counted by the stand-in);
- the operator process's peak RSS (``VmHWM`` in /proc), read when it has converged;
- and, after convergence, the requests of one idle drift pass (unchanged input writes nothing).

Usage: ``PYTHONSAFEPATH=1 .venv/bin/python bench/operator_scale.py [--namespaces 100]
[--queues 10] [--teams 2] [--agents 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kmock

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "integration" / "test_operator_standin.py"
CALLMESH = Path(sys.executable).with_name("callmesh")
KINDS = ("contactcenters", "queues", "agentteams")


def load_standin() -> Any:
    spec = importlib.util.spec_from_file_location("operator_standin", STANDIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["operator_standin"] = module
    spec.loader.exec_module(module)
    return module


def tenant(ns: str, queues: int, teams: int, agents: int) -> list[dict[str, Any]]:
    group = "callmesh.io/v1alpha1"
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": group,
            "kind": "ContactCenter",
            "metadata": {"name": "center", "namespace": ns},
            "spec": {"sipDomain": f"{ns}.voice.example.net", "timeZone": "UTC"},
        }
    ]
    team_names = [f"team-{t}" for t in range(teams)]
    for t, name in enumerate(team_names):
        docs.append(
            {
                "apiVersion": group,
                "kind": "AgentTeam",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "agents": [
                        {
                            "id": f"agent-{t}-{a}",
                            "name": f"Agent {t}-{a}",
                            "extension": str(1000 + t * 100 + a),
                            "skills": [{"name": "support", "level": 5}],
                        }
                        for a in range(agents)
                    ]
                },
            }
        )
    for q in range(queues):
        docs.append(
            {
                "apiVersion": group,
                "kind": "Queue",
                "metadata": {"name": f"queue-{q}", "namespace": ns},
                "spec": {
                    "tiers": [{"level": 1, "teams": [team_names[q % teams]]}],
                    "requiredSkills": [{"name": "support", "minLevel": 1}],
                },
            }
        )
    return docs


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def all_ready(api: Any) -> tuple[int, int]:
    ready = total = 0
    for plural in KINDS:
        for obj in api.objects(plural):
            total += 1
            status = obj.get("status") or {}
            if status.get("observedGeneration") != obj["metadata"]["generation"]:
                continue
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
            ):
                ready += 1
    return ready, total


async def main(args: argparse.Namespace) -> None:
    standin = load_standin()
    async with standin.ApiServer() as api, kmock.Server(api) as server:
        started = time.perf_counter()
        for n in range(args.namespaces):
            await standin.apply_manifests(
                server.client, tenant(f"tenant-{n:03d}", args.queues, args.teams, args.agents)
            )
        created = api.total_requests
        api._requests.clear()  # kmock's request log: not needed here
        print(
            f"created {sum(len(api.objects(p)) for p in KINDS)} objects in "
            f"{args.namespaces} namespaces ({time.perf_counter() - started:.1f} s)"
        )
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            standin.kubeconfig(str(server.url).rstrip("/"), kubeconfig)
            env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONSAFEPATH": "1"}
            profile = os.environ.get("CALLMESH_BENCH_PROFILE")  # cProfile output, to look into it
            launcher = (
                [sys.executable, "-m", "cProfile", "-o", profile, "-m", "callmesh.cli"]
                if profile
                else [str(CALLMESH)]
            )
            command = [
                *launcher,
                "operator",
                "--all-namespaces",
                f"--log-level={os.environ.get('CALLMESH_BENCH_LOG', 'WARNING')}",
                f"--drift-interval={args.drift_interval}",
                f"--liveness=http://127.0.0.1:{free_port()}/healthz",
            ]
            start = time.perf_counter()
            process = subprocess.Popen(command, env=env)
            try:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + args.timeout
                ready, total = all_ready(api)
                marks = [0.5, 0.9, 0.99]
                while ready < total and loop.time() < deadline:
                    await asyncio.sleep(0.2)  # polling, so the check costs the stand-in little
                    ready, total = all_ready(api)
                    while marks and ready >= marks[0] * total:
                        print(
                            f"  {marks.pop(0):.0%} Ready after {time.perf_counter() - start:.1f} s"
                        )
                elapsed = time.perf_counter() - start
                rss = peak_rss_mib(process.pid)
                operator_cpu = cpu_seconds(process.pid)
                standin_cpu = cpu_seconds(os.getpid())
                requests = api.total_requests - created
                writes = sum(
                    v
                    for (method, _), v in api.counts.items()
                    if method in ("POST", "PATCH", "DELETE")
                )
                print(f"ready: {ready}/{total} objects")
                print(f"time to every status Ready: {elapsed:.1f} s")
                print(f"API requests by the operator: {requests} ({writes - created} writes)")
                if os.environ.get("CALLMESH_BENCH_SHOW_REQUESTS"):
                    for (method, plural), count in api.counts.most_common():
                        print(f"  {method} {plural}: {count}")
                print(f"operator peak RSS: {rss:.0f} MiB")
                print(
                    f"CPU: operator {operator_cpu:.1f} s, stand-in and this driver {standin_cpu:.1f} s"
                )
                if ready == total and args.idle_pass:
                    # first let kopf finish its own bookkeeping (handler annotations), then
                    # count what two full drift passes over unchanged input make
                    lists = api.counts[("GET", "queues")]
                    while api.counts[("GET", "queues")] < lists + args.namespaces:
                        await asyncio.sleep(0.5)
                    version, before = api.version, api.total_requests
                    lists = api.counts[("GET", "queues")]
                    while api.counts[("GET", "queues")] < lists + 2 * args.namespaces:
                        await asyncio.sleep(0.5)
                    print(
                        f"two idle drift passes: {api.total_requests - before} requests, "
                        f"{api.version - version} writes"
                    )
                    if os.environ.get("CALLMESH_BENCH_SHOW_WRITES"):
                        for v, res, ns, _, line in api.log:
                            if v > version:
                                print("  wrote", res[2], ns, line[:160])
                    print(f"operator peak RSS after them: {peak_rss_mib(process.pid):.0f} MiB")
            finally:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--queues", type=int, default=10, help="per namespace")
    parser.add_argument("--teams", type=int, default=2, help="per namespace")
    parser.add_argument("--agents", type=int, default=5, help="per team")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--drift-interval", type=float, default=60.0)
    parser.add_argument("--no-idle-pass", dest="idle_pass", action="store_false")
    asyncio.run(main(parser.parse_args()))
