"""Router worker: enqueue-to-offer latency over loopback gRPC, beside a bare echo floor.

A child process serves the router (``RouterServer``, one queue, ``--agents`` agents, no
wrap-up) and, on a second port of the same event loop, a bare gRPC echo (bytes in, the same
bytes out). This process logs every agent in on its own AgentSession stream, then offers
contacts at ``--rate`` per second (evenly spaced) for ``--seconds``: for each one it sends
Enqueue and times until the Offer reaches the agent's stream; the agent accepts and the
contact is completed at once, so agents stay free. First, in the same run, the same
processes and at the same rate, it times echo round trips: the floor, what one gRPC round
trip costs on this machine. (Enqueue-to-offer is one request plus one stream message back,
so about one round trip plus the routing work.)

    PYTHONSAFEPATH=1 .venv/bin/python bench/router_grpc.py [--rate 500] [--seconds 10]

Prints p50/p90/p99/max of both, the ratio p99(enqueue-to-offer) / p99(echo), the server's
CPU time per echo and per contact (what rate one core sustains, whatever else runs on the
machine), and the load average (latencies only mean something on an otherwise idle box).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

NS = "bench"


def tenant(agents: int) -> str:
    docs = [
        {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "Queue",
            "metadata": {"name": "support", "namespace": NS},
            "spec": {
                "strategy": {"name": "longest-idle-agent"},
                "tiers": [{"level": 1, "teams": ["desk"]}],
                "wrapUpSeconds": 0,
            },
        },
        {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": "desk", "namespace": NS},
            "spec": {
                "agents": [
                    {"id": f"a{i:04d}", "name": f"Agent {i}", "extension": f"{1000 + i}"}
                    for i in range(agents)
                ]
            },
        },
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


async def serve(config: str, port_file: str) -> None:
    import grpc
    import grpc.aio
    from callmesh.workers.router.server import RouterServer

    router = RouterServer(config, address="127.0.0.1:0", reload_interval=0)
    port = await router.start()

    async def echo(request: bytes, _context: Any) -> bytes:
        return request

    async def cpu(_request: bytes, _context: Any) -> bytes:
        return repr(time.process_time()).encode()

    echo_server = grpc.aio.server()
    echo_server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "bench.Echo",
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(echo),
                    "Cpu": grpc.unary_unary_rpc_method_handler(cpu),
                },
            ),
        )
    )
    echo_port = echo_server.add_insecure_port("127.0.0.1:0")
    await echo_server.start()
    Path(port_file).write_text(f"{port} {echo_port}")
    await asyncio.Event().wait()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def drive(
    port: int,
    echo_port: int,
    agents: int,
    rate: float,
    seconds: float,
    complete_on_stream: bool,
) -> None:
    import grpc
    import grpc.aio
    from callmesh.v1 import router_pb2, router_pb2_grpc

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = router_pb2_grpc.RouterServiceStub(channel)
    echo_channel = grpc.aio.insecure_channel(f"127.0.0.1:{echo_port}")
    echo = echo_channel.unary_unary("/bench.Echo/Echo")
    cpu_call = echo_channel.unary_unary("/bench.Echo/Cpu")

    async def server_cpu() -> float:
        """CPU seconds the server process has used so far."""
        return float(await cpu_call(b""))

    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    total = int(rate * seconds)

    logged_in: list[str] = []
    all_in = asyncio.Event()

    async def agent(agent_id: str) -> None:
        call = stub.AgentSession()
        await call.write(
            router_pb2.AgentSessionRequest(
                login=router_pb2.AgentLogin(agent_id=agent_id, ready=True)
            )
        )
        while True:
            event = await call.read()
            if event is grpc.aio.EOF:
                return
            if event.WhichOneof("event") == "state" and agent_id not in logged_in:
                logged_in.append(agent_id)
                if len(logged_in) == agents:
                    all_in.set()
            elif event.WhichOneof("event") == "offer":
                cid = event.offer.contact_id
                latencies.append(time.perf_counter() - sent.pop(cid))
                await call.write(
                    router_pb2.AgentSessionRequest(
                        answer=router_pb2.AgentOfferAnswer(
                            contact_id=cid, answer=router_pb2.OFFER_ANSWER_ACCEPT
                        )
                    )
                )
            elif event.WhichOneof("event") == "connected":
                contact_id = event.connected.contact_id
                if complete_on_stream:
                    await call.write(
                        router_pb2.AgentSessionRequest(
                            complete=router_pb2.AgentComplete(contact_id=contact_id)
                        )
                    )
                else:
                    await stub.Complete(router_pb2.CompleteRequest(contact_id=contact_id))
                if len(latencies) + sum(f.startswith("enqueue") for f in failed) >= total:
                    done.set()

    tasks = [asyncio.create_task(agent(f"a{i:04d}")) for i in range(agents)]
    await asyncio.wait_for(all_in.wait(), 60)  # every agent logged in before timing
    # Warm-up (not timed): connection, code paths.
    for _ in range(50):
        await echo(b"x" * 64)

    echo_times: list[float] = []
    failed: list[str] = []

    async def one_echo() -> None:
        t = time.perf_counter()
        try:
            await echo(b"x" * 64)
        except grpc.aio.AioRpcError as exc:  # grpc.aio cancels calls past ~2,000 in flight
            failed.append(f"echo: {exc.code().name}")
            return
        echo_times.append(time.perf_counter() - t)

    async def one_contact(n: int) -> None:
        cid = f"c{n}"
        sent[cid] = time.perf_counter()
        try:
            await stub.Enqueue(router_pb2.EnqueueRequest(contact_id=cid, queue="support"))
        except grpc.aio.AioRpcError as exc:
            failed.append(f"enqueue: {exc.code().name}")
            sent.pop(cid, None)
            if len(latencies) + sum(f.startswith("enqueue") for f in failed) >= total:
                done.set()

    loop = asyncio.get_running_loop()

    async def paced(make: Any) -> float:
        """Start ``total`` calls evenly spaced at ``rate``; the seconds it took to run them."""
        start = loop.time()
        pending = []
        for n in range(total):
            delay = start + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(make(n)))
        await asyncio.gather(*pending)
        return loop.time() - start

    # Phase 1, the floor: echo round trips at the same rate, same processes, same loop.
    cpu0 = await server_cpu()
    await paced(lambda _n: one_echo())
    cpu1 = await server_cpu()
    # Phase 2: contacts (enqueue -> offer at the agent -> accept -> complete).
    elapsed = await paced(one_contact)
    await asyncio.wait_for(done.wait(), 60)
    cpu2 = await server_cpu()
    for t in tasks:
        t.cancel()
    await channel.close()
    await echo_channel.close()

    ms = 1000.0
    how = "on the agent's stream" if complete_on_stream else "by the Complete rpc"
    print(f"router gRPC bench: {agents} agents, {total} contacts offered at {rate:g}/s")
    print(f"  each contact accepted at once and completed {how}")
    print(f"  achieved rate: {total / elapsed:.0f} contacts/s over {elapsed:.1f} s")
    print(f"  {'':24} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}   (ms)")
    for name, values in (("enqueue-to-offer", latencies), ("echo round trip (floor)", echo_times)):
        print(
            f"  {name:24} {pct(values, 50) * ms:8.3f} {pct(values, 90) * ms:8.3f}"
            f" {pct(values, 99) * ms:8.3f} {max(values) * ms:8.3f}"
        )
    per_echo, per_contact = (cpu1 - cpu0) / total, (cpu2 - cpu1) / total
    print(
        f"  server CPU: {per_echo * 1e6:.0f} µs per echo, {per_contact * 1e6:.0f} µs per contact"
        f" (enqueue, offer, accept, complete): at most {1 / per_contact:.0f} contacts/s per core"
    )
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if failed:
        print(f"  SATURATED: {len(failed)} rpcs failed, e.g. {failed[0]}: figures are not valid")
    ratio = pct(latencies, 99) / pct(echo_times, 99)
    print(f"  p99 ratio enqueue-to-offer / echo: {ratio:.2f}x (goal: within 3x)")
    print(f"  mean enqueue-to-offer {statistics.fmean(latencies) * ms:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="contacts per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer")
    parser.add_argument("--agents", type=int, default=200, help="agents logged in")
    parser.add_argument(
        "--complete-on-stream",
        action="store_true",
        help="agents complete on their AgentSession stream instead of the Complete rpc",
    )
    parser.add_argument("--serve", nargs=2, metavar=("CONFIG", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(*args.serve))
        return
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "tenant.yaml"
        config.write_text(tenant(args.agents))
        port_file = Path(tmp) / "ports"
        env = {**os.environ, "PYTHONSAFEPATH": "1"}
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(config), str(port_file)], env=env
        )
        try:
            deadline = time.monotonic() + 60
            while not port_file.exists() or not port_file.read_text():
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the router did not start")
                time.sleep(0.05)
            port, echo_port = map(int, port_file.read_text().split())
            asyncio.run(
                drive(
                    port,
                    echo_port,
                    args.agents,
                    args.rate,
                    args.seconds,
                    args.complete_on_stream,
                )
            )
        finally:
            child.terminate()
            child.wait(10)


if __name__ == "__main__":
    main()
