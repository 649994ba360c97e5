"""Router worker: enqueue-to-offer latency over loopback gRPC, beside a bare echo floor.

Three processes, as in a cluster: a child serves the router (``RouterServer``, one queue,
``--agents`` agents, no wrap-up, no span export) and, on a second port of the same event
loop, a bare gRPC echo (bytes in, the same bytes out); a second child holds the agents, each
logged in on its own AgentSession stream (the agents' desktops); this process is the caller
side (callcontrol). It offers contacts at ``--rate`` per second (evenly spaced) for
``--seconds``: for each one it sends Enqueue, and the agents' process notes when the Offer
reaches the agent's stream (``time.perf_counter``, CLOCK_MONOTONIC, the same clock in every
process); the agent accepts and the contact is completed at once, so agents stay free.
Before the contacts, at the same rate and with the same processes, it times echo round
trips: the floor, what one gRPC round trip costs on this machine at that moment
(Enqueue-to-offer is one request plus one stream message back, so about one round trip plus
the routing work). ``--rounds`` repeats echo + contacts (the machine's load varies);
``--same-process`` runs the agents in this process instead (one client process);
``--core-only [--against OLD_CORE_PY]`` times the worker's RouterCore in process, without
gRPC (optionally beside another version of ``workers/router/core.py``); ``--event-loop``
picks the router process's loop as the worker's option does (uvloop by default),
``--client-loop`` that of the clients (uvloop by default too).

    PYTHONSAFEPATH=1 .venv/bin/python bench/router_grpc.py [--rate 500] [--seconds 10]

Prints, per round, p50/p90/p99/max of both, the ratio p99(enqueue-to-offer) / p99(echo),
the server's CPU time per echo and per contact (read in the server process itself: what
rate one core sustains, whatever else runs on the machine), the server's garbage
collections (count, total and longest pause per generation: a pause stalls the loop, echo
included), and the load average; then the
best valid round (no rpc failed, and the floor's p99 within 10x its p50, i.e. the machine
was not busy with something else while the floor was timed) and the clients' CPU per contact.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from callmesh import core_build

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
    from callmesh.workers.router.server import RouterServer, tune_garbage_collector

    router = RouterServer(config, address="127.0.0.1:0", reload_interval=0)
    port = await router.start()

    async def echo(request: bytes, _context: Any) -> bytes:
        return request

    # Garbage collections of this process: [count, total s, longest s] per generation.
    pauses = [[0, 0.0, 0.0] for _ in range(3)]
    began = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            took, entry = time.perf_counter() - began[0], pauses[info["generation"]]
            entry[0] += 1
            entry[1] += took
            entry[2] = max(entry[2], took)

    gc.callbacks.append(timed)

    async def cpu(_request: bytes, _context: Any) -> bytes:
        """CPU seconds so far, then the collections since the last call (and resets them)."""
        reply = json.dumps([time.process_time(), pauses])
        for entry in pauses:
            entry[:] = [0, 0.0, 0.0]
        return reply.encode()

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
    tune_garbage_collector()  # as run_router does once the worker started
    Path(port_file).write_text(f"{port} {echo_port}")
    await asyncio.Event().wait()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def agents(
    port: int,
    count: int,
    complete_on_stream: bool,
    arrived: Any,
    ready: asyncio.Event,
) -> list[asyncio.Task[None]]:
    """Log ``count`` agents in on their own AgentSession streams; each offer is timed on
    arrival (``arrived(contact_id, perf_counter)``), accepted at once, and the contact is
    completed as soon as it is connected (agents stay free). Returns the session tasks."""
    import grpc
    import grpc.aio
    from callmesh.v1 import router_pb2, router_pb2_grpc

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = router_pb2_grpc.RouterServiceStub(channel)
    logged_in: set[str] = set()

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
            kind = event.WhichOneof("event")
            if kind == "offer":
                cid = event.offer.contact_id
                arrived(cid, time.perf_counter())
                await call.write(
                    router_pb2.AgentSessionRequest(
                        answer=router_pb2.AgentOfferAnswer(
                            contact_id=cid, answer=router_pb2.OFFER_ANSWER_ACCEPT
                        )
                    )
                )
            elif kind == "connected":
                contact_id = event.connected.contact_id
                if complete_on_stream:
                    await call.write(
                        router_pb2.AgentSessionRequest(
                            complete=router_pb2.AgentComplete(contact_id=contact_id)
                        )
                    )
                else:
                    await stub.Complete(router_pb2.CompleteRequest(contact_id=contact_id))
            elif kind == "state" and agent_id not in logged_in:
                logged_in.add(agent_id)
                if len(logged_in) == count:
                    ready.set()

    return [asyncio.create_task(agent(f"a{i:04d}")) for i in range(count)]


async def agents_process(port: int, count: int, complete_on_stream: bool) -> None:
    """The agents in a process of their own: prints ``ready``, then one ``<contact id>
    <perf_counter at the offer's arrival>`` line per offer (flushed every 20 ms), and, once
    stdin closes, ``cpu <seconds of CPU this process used>``."""
    lines: list[str] = []
    ready = asyncio.Event()
    tasks = await agents(
        port, count, complete_on_stream, lambda cid, t: lines.append(f"{cid} {t!r}\n"), ready
    )
    await asyncio.wait_for(ready.wait(), 60)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    while not stdin_closed.done():
        if lines:
            sys.stdout.write("".join(lines))
            sys.stdout.flush()
            lines.clear()
        await asyncio.sleep(0.02)
    sys.stdout.write("".join(lines) + f"cpu {time.process_time()!r}\n")
    sys.stdout.flush()
    for t in tasks:
        t.cancel()


async def drive(
    port: int,
    echo_port: int,
    agent_count: int,
    rate: float,
    seconds: float,
    complete_on_stream: bool,
    rounds: int,
    separate: bool,
    client_loop: str,
) -> None:
    import grpc
    import grpc.aio
    from callmesh.v1 import router_pb2, router_pb2_grpc

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = router_pb2_grpc.RouterServiceStub(channel)
    echo_channel = grpc.aio.insecure_channel(f"127.0.0.1:{echo_port}")
    echo = echo_channel.unary_unary("/bench.Echo/Echo")
    cpu_call = echo_channel.unary_unary("/bench.Echo/Cpu")

    async def server_cpu() -> tuple[float, list[list[float]]]:
        """CPU seconds the server process has used so far, and its garbage collections
        since the last call: [count, total s, longest s] per generation."""
        seconds, pauses = json.loads(await cpu_call(b""))
        return float(seconds), pauses

    total = int(rate * seconds)
    arrivals: dict[str, float] = {}
    waiting_for: set[str] = set()
    all_arrived = asyncio.Event()

    def arrived(cid: str, at: float) -> None:
        arrivals[cid] = at
        waiting_for.discard(cid)
        if not waiting_for:
            all_arrived.set()

    child: asyncio.subprocess.Process | None = None
    reader: asyncio.Task[None] | None = None
    agents_cpu: list[float] = []
    if separate:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--agents-process",
            str(port),
            str(agent_count),
            str(int(complete_on_stream)),
            client_loop,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONSAFEPATH": "1"},
        )
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 90)
        if line.strip() != b"ready":
            raise SystemExit(f"the agents process did not start: {line!r}")

        async def read(stream: asyncio.StreamReader) -> None:
            async for raw in stream:
                key, value = raw.decode().split()
                if key == "cpu":
                    agents_cpu.append(float(value))
                else:
                    arrived(key, float(value))

        reader = asyncio.create_task(read(child.stdout))
    else:
        ready = asyncio.Event()
        agent_tasks = await agents(port, agent_count, complete_on_stream, arrived, ready)
        await asyncio.wait_for(ready.wait(), 60)  # every agent logged in before timing
    # Warm-up (not timed): connection, code paths.
    for n in range(50):
        await echo(b"x" * 64)
        await stub.Enqueue(router_pb2.EnqueueRequest(contact_id=f"warm{n}", queue="support"))

    failed: list[str] = []
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

    ms = 1000.0
    how = "on the agent's stream" if complete_on_stream else "by the Complete rpc"
    where = "a process of their own" if separate else "the driver's process"
    print(f"router gRPC bench: {agent_count} agents, {total} contacts offered at {rate:g}/s")
    print(f"  each contact accepted at once and completed {how}; agents in {where}")
    print(f"  clients' event loop: {type(loop).__module__.partition('.')[0]} ({client_loop})")
    print(f"  callmesh core: {core_build()}")
    print(f"  {'':26} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}   (ms)")
    results = []
    driver_cpu = 0.0
    for r in range(rounds):
        echo_times: list[float] = []
        sent: dict[str, float] = {}

        async def one_echo(echo_times: list[float] = echo_times) -> None:
            t = time.perf_counter()
            try:
                await echo(b"x" * 64)
            except grpc.aio.AioRpcError as exc:  # grpc.aio cancels calls past ~2,000 in flight
                failed.append(f"echo: {exc.code().name}")
                return
            echo_times.append(time.perf_counter() - t)

        async def one_contact(n: int, r: int = r, sent: dict[str, float] = sent) -> None:
            cid = f"r{r}c{n}"
            sent[cid] = time.perf_counter()
            try:
                await stub.Enqueue(router_pb2.EnqueueRequest(contact_id=cid, queue="support"))
            except grpc.aio.AioRpcError as exc:
                failed.append(f"enqueue: {exc.code().name}")
                waiting_for.discard(cid)
                sent.pop(cid, None)

        # The floor: echo round trips at the same rate, same processes, same loop.
        cpu0, _ = await server_cpu()
        await paced(lambda _n: one_echo())
        (cpu1, echo_gc), d1 = await server_cpu(), time.process_time()
        # Contacts: enqueue -> offer at the agent -> accept -> complete.
        waiting_for.clear()
        waiting_for.update(f"r{r}c{n}" for n in range(total))
        all_arrived.clear()
        elapsed = await paced(one_contact)
        if waiting_for:
            await asyncio.wait_for(all_arrived.wait(), 120)
        await asyncio.sleep(0.2)  # the last completions
        (cpu2, contacts_gc), d2 = await server_cpu(), time.process_time()
        driver_cpu += d2 - d1
        latencies = [arrivals[cid] - t for cid, t in sent.items() if cid in arrivals]
        failed_now, failed[:] = list(failed), []
        per_echo, per_contact = (cpu1 - cpu0) / total, (cpu2 - cpu1) / total
        ratio = pct(latencies, 99) / pct(echo_times, 99)
        # A floor whose p99 is over 10x its p50 was measured while something else held
        # the CPU: the ratio against it means nothing.
        disturbed = pct(echo_times, 99) > 10 * pct(echo_times, 50)
        if not failed_now and not disturbed:
            results.append((ratio, per_contact))
        print(f"  round {r + 1}: achieved {total / elapsed:.0f} contacts/s over {elapsed:.1f} s")
        for name, values in (
            ("enqueue-to-offer", latencies),
            ("echo round trip (floor)", echo_times),
        ):
            print(
                f"    {name:24} {pct(values, 50) * ms:8.3f} {pct(values, 90) * ms:8.3f}"
                f" {pct(values, 99) * ms:8.3f} {max(values) * ms:8.3f}"
            )
        print(
            f"    p99 ratio {ratio:.2f}x; server CPU {per_echo * 1e6:.0f} µs per echo,"
            f" {per_contact * 1e6:.0f} µs per contact (at most {1 / per_contact:.0f}"
            f" contacts/s per core); load average {os.getloadavg()[0]:.1f}"
        )
        for name, pauses in (("echo", echo_gc), ("contacts", contacts_gc)):
            print(
                f"    server garbage collections during the {name}: "
                + ", ".join(
                    f"gen{g} {int(n)} x (total {total * ms:.1f}, longest {longest * ms:.1f} ms)"
                    for g, (n, total, longest) in enumerate(pauses)
                )
            )
        if disturbed:
            print(
                "    FLOOR DISTURBED: echo p99 over 10x its p50 (the machine was busy): not valid"
            )
        if failed_now:
            print(
                f"    SATURATED: {len(failed_now)} rpcs failed, e.g. {failed_now[0]}: this"
                " round's figures are not valid"
            )
    if child is not None:
        assert child.stdin is not None and reader is not None
        child.stdin.close()
        await asyncio.wait_for(reader, 30)
        await child.wait()
    else:
        for t in agent_tasks:
            t.cancel()
    await channel.close()
    await echo_channel.close()
    contacts = total * rounds
    if results:
        best = min(results)
        print(
            f"  best valid round: p99 ratio {best[0]:.2f}x (goal: within 3x), server"
            f" {best[1] * 1e6:.0f} µs CPU per contact"
        )
    else:
        print("  no valid round: every round saturated or had a disturbed floor")
    if separate:
        print(
            f"  client CPU per contact: callcontrol side (Enqueue) {driver_cpu / contacts * 1e6:.0f}"
            f" µs, agents process {agents_cpu[0] / contacts * 1e6:.0f} µs (login included)"
        )
    else:
        print(f"  client CPU per contact (driver and agents): {driver_cpu / contacts * 1e6:.0f} µs")
    print(f"  {os.cpu_count()} cores; load average now {os.getloadavg()[0]:.1f}")


async def core_only(agent_count: int, contacts: int, against: str | None) -> None:
    """The worker's own share, without gRPC: CPU per contact of ``RouterCore`` (engine
    included) driven in process (enqueue, position, accept, complete, agents' events
    drained), the best of 7 rounds; with ``against``, the same for another ``core.py``
    (e.g. ``git show <rev>:workers/router/core.py > old.py``), rounds alternating."""
    import importlib.util

    from callmesh.workers.router import core as current
    from callmesh.workers.router.config import load_config
    from callmesh.workers.router.server import plugin_policy
    from callmesh.workers.telemetry import setup_telemetry

    modules: dict[str, Any] = {"this tree": current}
    if against:
        spec = importlib.util.spec_from_file_location("callmesh_bench_other_core", against)
        assert spec is not None and spec.loader is not None
        other = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = other
        spec.loader.exec_module(other)
        modules = {against: other, **modules}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tenant.yaml"
        path.write_text(tenant(agent_count))
        config = load_config(path)
    cores = {}
    for name, module in modules.items():
        telemetry = setup_telemetry("router", tenant=NS)
        core = module.RouterCore(
            config, plugin_policy, meter=telemetry.meter, tracer=telemetry.tracer
        )
        for i in range(agent_count):
            session = core.open_session(f"a{i:04d}", True)
            while not session.events.empty():
                session.events.get_nowait()
        cores[name] = core
    serial = 0

    def one(core: Any) -> None:
        nonlocal serial
        serial += 1
        cid = f"c{serial}"
        core.enqueue(cid, "support", attributes={})
        agent = next(iter(core.contacts[cid].ringing))
        core.position(cid)
        core.answer(cid, agent, True)
        core.complete(cid)
        events = core.sessions[agent].events
        while not events.empty():
            events.get_nowait()

    best = dict.fromkeys(cores, math.inf)
    for _ in range(7):
        for name, core in cores.items():
            start = time.process_time()
            for _ in range(contacts):
                one(core)
            best[name] = min(best[name], (time.process_time() - start) / contacts)
    print(f"router core in process (no gRPC): {agent_count} agents, best of 7 x {contacts}")
    for name, seconds in best.items():
        print(f"  {name}: {seconds * 1e6:.1f} µs CPU per contact")


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
    parser.add_argument("--rounds", type=int, default=3, help="echo + contacts rounds")
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="run the agents in the driver's process (one client process instead of two)",
    )
    parser.add_argument(
        "--core-only",
        action="store_true",
        help="measure the worker's RouterCore in process, without gRPC (CPU per contact)",
    )
    parser.add_argument(
        "--against", metavar="CORE_PY", help="with --core-only: also time this core.py"
    )
    parser.add_argument(
        "--event-loop",
        default="auto",
        help="the router process's loop, as the worker's --event-loop: auto (uvloop when"
        " installed), uvloop or asyncio",
    )
    parser.add_argument(
        "--client-loop",
        default="auto",
        help="the clients' loop (this process and the agents'): auto (uvloop when installed),"
        " uvloop or asyncio; they share the machine's cores with the router, so a heavier"
        " loop there leaves less CPU to it",
    )
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--agents-process", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from callmesh.workers.runtime import loop_factory, run

    if args.serve:
        config, port_file, event_loop = args.serve
        run(serve(config, port_file), loop_factory(event_loop))
        return
    if args.agents_process:
        port, count, on_stream = map(int, args.agents_process[:3])
        run(agents_process(port, count, bool(on_stream)), loop_factory(args.agents_process[3]))
        return
    if args.core_only:
        asyncio.run(core_only(args.agents, 1000, args.against))
        return
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "tenant.yaml"
        config.write_text(tenant(args.agents))
        port_file = Path(tmp) / "ports"
        env = {**os.environ, "PYTHONSAFEPATH": "1"}
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(config), str(port_file), args.event_loop],
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while not port_file.exists() or not port_file.read_text():
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the router did not start")
                time.sleep(0.05)
            port, echo_port = map(int, port_file.read_text().split())
            run(
                drive(
                    port,
                    echo_port,
                    args.agents,
                    args.rate,
                    args.seconds,
                    args.complete_on_stream,
                    args.rounds,
                    not args.same_process,
                    args.client_loop,
                ),
                loop_factory(args.client_loop),
            )
        finally:
            child.terminate()
            child.wait(10)


if __name__ == "__main__":
    main()
