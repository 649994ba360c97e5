"""Callcontrol worker: calls per second through IVR -> queue -> bridge, memory per waiting call.

Three processes on loopback. One child runs the FreeSWITCH test peer (``tests/esl_peer``,
media time 0, recording nothing) and places the calls; another runs the router worker and
``--agents`` agent desktops. This process runs only the callcontrol worker
(``CallControl``), so its CPU time and memory are the worker's alone. The worker and the
router run on the event loop the workers use (``--event-loop``: uvloop by default,
``asyncio`` for the standard library's).

1. **Throughput**: ``--calls`` callers, at most ``--concurrency`` at a time, each through a
   one-prompt IVR into a queue, offered to a free agent, originated, ``uuid_bridge``d; the
   agent hangs up at once. Printed: calls/s end to end (the children share the machine) and
   the worker's CPU time per call, i.e. the rate one core running only callcontrol carries.
2. **Memory**: ``--waiting`` callers queue where no agent is logged in and wait on hold
   music with their router watch open. Printed: the worker's Python heap (tracemalloc) and
   RSS growth per waiting call.

    PYTHONSAFEPATH=1 .venv/bin/python bench/callcontrol.py [--calls 2000] [--waiting 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
NS = "bench"


def tenant(agents: int, interval: int = 60) -> list[dict[str, Any]]:
    meta = {"namespace": NS}
    queue_spec = {"tiers": [{"level": 1, "teams": ["desk"]}], "wrapUpSeconds": 0,
                  "announcements": {"position": True, "estimatedWait": True,
                                    "intervalSeconds": interval}}  # fmt: skip
    return [
        {"apiVersion": "callmesh.io/v1alpha1", "kind": "ContactCenter",
         "metadata": {"name": "c", **meta},
         "spec": {"sipDomain": "bench.example.net", "timeZone": "UTC",
                  "numbers": [{"did": "+15550100", "flow": "fast"}],
                  "recording": {"policy": "none"}}},
        {"apiVersion": "callmesh.io/v1alpha1", "kind": "Queue",
         "metadata": {"name": "fast", **meta}, "spec": queue_spec},
        {"apiVersion": "callmesh.io/v1alpha1", "kind": "Queue",
         "metadata": {"name": "hold", **meta},
         "spec": {**queue_spec, "tiers": [{"level": 1, "teams": ["night"]}]}},
        {"apiVersion": "callmesh.io/v1alpha1", "kind": "AgentTeam",
         "metadata": {"name": "desk", **meta},
         "spec": {"agents": [{"id": f"a{i:04d}", "name": f"A {i}", "extension": f"{1000 + i}"}
                             for i in range(agents)]}},
        {"apiVersion": "callmesh.io/v1alpha1", "kind": "AgentTeam",
         "metadata": {"name": "night", **meta},
         "spec": {"agents": [{"id": "n0", "name": "Night", "extension": "9000"}]}},
        *[
            {"apiVersion": "callmesh.io/v1alpha1", "kind": "IVRFlow",
             "metadata": {"name": name, **meta},
             "spec": {"entry": "hi", "nodes": [
                 {"id": "hi", "type": "play",
                  "play": {"prompt": {"file": "ivr/welcome.wav"}, "next": "q"}},
                 {"id": "q", "type": "queue", "queue": {"queue": name}}]}}
            for name in ("fast", "hold")
        ],
    ]  # fmt: skip


# ====================================================================== child processes


def router_main(conn: Connection, config: str, agents: int, event_loop: str) -> None:
    from callmesh.workers.runtime import loop_factory, run

    run(_router(conn, config, agents), loop_factory(event_loop))


async def _router(conn: Connection, config: str, agents: int) -> None:
    """The router and ``agents`` agent desktops (logged in, ready), in their own process."""
    import grpc.aio
    from callmesh.v1 import router_pb2, router_pb2_grpc
    from callmesh.workers.router.server import RouterServer

    router = RouterServer(config, address="127.0.0.1:0", reload_interval=0)
    router_port = await router.start()
    loop = asyncio.get_running_loop()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{router_port}")
    stub = router_pb2_grpc.RouterServiceStub(channel)
    sessions = []
    ready = 0
    for i in range(agents):
        session = stub.AgentSession()
        login = router_pb2.AgentLogin(agent_id=f"a{i:04d}", ready=True)
        await session.write(router_pb2.AgentSessionRequest(request_id="l", login=login))
        sessions.append(session)

    async def drain(session: Any) -> None:
        nonlocal ready
        first = True
        async for _ in session:
            if first:
                ready += 1
                first = False

    drains = [loop.create_task(drain(s)) for s in sessions]
    while ready < agents:
        await asyncio.sleep(0.01)
    conn.send(router_port)
    await loop.run_in_executor(None, conn.recv)  # "stop"
    for task in drains:
        task.cancel()
    await channel.close(None)
    await router.stop(0)


def peer_main(conn: Connection) -> None:
    sys.path.append(str(ROOT / "tests"))
    asyncio.run(_peer(conn))


async def _peer(conn: Connection) -> None:
    """The FreeSWITCH test peer (recording nothing) and the callers it places."""
    from esl_peer.channel import Channel
    from esl_peer.peer import Endpoint, FakeFreeSwitch

    peer = FakeFreeSwitch(record=False)
    await peer.start()
    loop = asyncio.get_running_loop()
    talks: set[asyncio.Task[None]] = set()

    def phone(leg: Channel) -> None:
        async def talk() -> None:
            bridged = asyncio.ensure_future(leg.wait_event("CHANNEL_UNPARK"))
            gone = asyncio.ensure_future(leg.hungup.wait())
            await asyncio.wait({bridged, gone}, return_when=asyncio.FIRST_COMPLETED)
            gone.cancel()
            if bridged.done():
                peer._hangup_leg(leg, "NORMAL_CLEARING")
            else:
                bridged.cancel()

        task = loop.create_task(talk())
        talks.add(task)
        task.add_done_callback(talks.discard)

    peer.default_endpoint = Endpoint(on_channel=phone)
    conn.send(peer.port)
    cc_port = await loop.run_in_executor(None, conn.recv)
    calls: list[Any] = []

    async def place(flow: str, count: int, concurrency: int) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                call = await peer.call("127.0.0.1", cc_port, destination="+15550100",
                                       variables={"callmesh_flow": flow})  # fmt: skip
                calls.append(call)
                if flow == "fast":
                    await call.channel.hungup.wait()
                    return

                async def on_hold() -> None:
                    while True:
                        event = await call.channel.wait_event("PLAYBACK_START")
                        if "local_stream" in (event.get("Playback-File-Path") or ""):
                            return

                # release the gate once this caller hears hold music, or is gone
                music = asyncio.ensure_future(on_hold())
                gone = asyncio.ensure_future(call.channel.hungup.wait())
                await asyncio.wait({music, gone}, return_when=asyncio.FIRST_COMPLETED)
                music.cancel()
                gone.cancel()

        await asyncio.gather(*(one() for _ in range(count)))

    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command[0] == "stop":
            break
        if command[0] == "place":
            await place(command[1], command[2], command[3])
            conn.send(sum(1 for c in calls if not c.channel.hungup.is_set()))
        elif command[0] == "hangup-all":
            for call in calls:
                call.channel.hangup("NORMAL_CLEARING")
            calls.clear()
            conn.send("done")
    await peer.stop()


# ====================================================================== this process


class CountingSink:
    def __init__(self) -> None:
        self.count = 0
        self.dispositions: dict[str, int] = {}
        self.phases: list[tuple[float, ...]] = []

    async def write(self, record: Any) -> None:
        self.count += 1
        if record.connected_at and record.ended_at:
            self.phases.append((record.answered_at - record.started_at,
                                record.enqueued_at - record.answered_at,
                                (record.offered_at or record.enqueued_at) - record.enqueued_at,
                                record.connected_at - (record.offered_at or record.enqueued_at),
                                record.ended_at - record.connected_at))  # fmt: skip
        self.dispositions[record.disposition] = self.dispositions.get(record.disposition, 0) + 1

    async def close(self) -> None:
        pass


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        await asyncio.sleep(0.01)


async def main(args: argparse.Namespace) -> None:
    import logging

    from callmesh.workers.callcontrol.config import load_config
    from callmesh.workers.callcontrol.worker import CallControl
    from callmesh.workers.esl.connection import EslOptions

    logging.basicConfig(level=getattr(logging, os.environ.get("BENCH_LOG", "ERROR")))
    folder = Path(tempfile.mkdtemp(prefix="callcontrol-bench-"))
    config_path = folder / "tenant.yaml"
    config_path.write_text(yaml.safe_dump_all(tenant(args.agents, args.interval), sort_keys=False))
    config = load_config(config_path)
    ctx = mp.get_context("spawn")
    to_router, router_end = ctx.Pipe()
    router_proc = ctx.Process(
        target=router_main, args=(router_end, str(config_path), args.agents, args.event_loop)
    )
    router_proc.start()
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=peer_main, args=(child,))
    proc.start()
    loop = asyncio.get_running_loop()
    peer_port = await loop.run_in_executor(None, parent.recv)
    router_port = await loop.run_in_executor(None, to_router.recv)
    sink = CountingSink()
    worker = CallControl(
        config,
        router=f"127.0.0.1:{router_port}",
        freeswitch=("127.0.0.1", peer_port),
        password="ClueCon",
        sink=sink,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=0,
        # the test peer answers `connect` slowly when thousands of calls arrive on a loaded
        # machine: a long connect timeout keeps the measurement about callcontrol
        esl_options=EslOptions(subscription_maxsize=100_000, connect_timeout=120.0),
    )
    cc_port = await worker.start()
    parent.send(cc_port)

    async def ask(*command: Any) -> Any:
        parent.send(command)
        return await loop.run_in_executor(None, parent.recv)

    # --- warm-up, then throughput ---------------------------------------------------------
    await ask("place", "fast", 100, args.concurrency)
    await until(lambda: sink.count >= 100, 60)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)  # CPU time: the machine is shared
        profiler.enable()
    start_count, c0, t0 = sink.count, cpu(), time.perf_counter()
    m0 = time.thread_time()
    await ask("place", "fast", args.calls, args.concurrency)
    await until(lambda: sink.count >= start_count + args.calls, 600)
    wall, used = time.perf_counter() - t0, cpu() - c0
    main = time.thread_time() - m0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    answered = sink.dispositions.get("answered", 0)
    print(f"throughput: {args.calls} calls (IVR prompt -> queue -> originate -> uuid_bridge ->"
          f" hangup), {args.concurrency} at a time, {args.agents} agents")  # fmt: skip
    print(f"  end to end          {args.calls / wall:8.0f} calls/s  ({wall:.2f} s;"
          f" the peer and router share the machine)")  # fmt: skip
    print(f"  worker CPU per call {used / args.calls * 1e3:8.2f} ms"
          f"  -> {args.calls / used:.0f} calls/s per core")  # fmt: skip
    print(f"  event-loop thread   {main / args.calls * 1e3:8.2f} ms"
          f"  -> {args.calls / main:.0f} calls/s (the rest is gRPC's C-core threads)")  # fmt: skip
    print(
        f"  answered            {answered} of {sink.count} {dict(sorted(sink.dispositions.items()))}"
    )
    if sink.phases:
        names = ("connect->answer", "answer->queued", "queued->offered", "offered->bridged",
                 "bridged->end")  # fmt: skip
        means = [sum(p[i] for p in sink.phases) / len(sink.phases) for i in range(5)]
        print(
            "  mean phase times    "
            + ", ".join(f"{n} {m * 1e3:.0f} ms" for n, m in zip(names, means, strict=True))
        )

    # --- memory per waiting call --------------------------------------------------------
    gc.collect()
    tracemalloc.start(args.frames)
    heap0, rss0 = tracemalloc.get_traced_memory()[0], rss_kib()
    before = sink.count
    waiting = await ask("place", "hold", args.waiting, args.hold_concurrency)

    def all_waiting() -> bool:
        calls = list(worker.calls.values())
        return len(calls) >= waiting and all(c.waiting for c in calls)

    await until(all_waiting, 3600)
    await asyncio.sleep(0)
    gc.collect()
    heap1, rss1 = tracemalloc.get_traced_memory()[0], rss_kib()
    if args.top:
        snap = tracemalloc.take_snapshot()
        for stat in snap.statistics("traceback" if args.frames > 1 else "lineno")[: args.top]:
            print("   ", stat)
            if args.frames > 1:
                for line in stat.traceback.format()[-2 * args.frames :]:
                    print("       ", line)
    tracemalloc.stop()
    print(f"memory: {waiting} calls waiting at once (hold music, router watch open)")
    print(f"  Python heap per waiting call {(heap1 - heap0) / waiting / 1024:6.1f} KiB")
    print(f"  RSS per waiting call         {(rss1 - rss0) / waiting:6.1f} KiB")
    await ask("hangup-all")
    await until(lambda: sink.count >= before + waiting, 600)
    parent.send(("stop",))
    await worker.stop(1.0)
    proc.join(10)
    to_router.send("stop")
    router_proc.join(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--waiting", type=int, default=5000)
    parser.add_argument("--top", type=int, default=0, help="show the N biggest allocators")
    parser.add_argument("--hold-concurrency", type=int, default=50,
                        help="callers arriving at once in the memory phase")  # fmt: skip
    parser.add_argument("--interval", type=int, default=60,
                        help="seconds between queue announcements (each re-reads the position"
                        " with a WatchContact); a long one measures waiting calls between"
                        " announcements")  # fmt: skip
    parser.add_argument("--frames", type=int, default=1, help="traceback depth for --top")
    parser.add_argument(
        "--profile",
        help="write a cProfile (event-loop thread CPU time) of the worker's throughput phase here",
    )
    parser.add_argument(
        "--event-loop",
        default="auto",
        help="the worker's and router's loop, as their --event-loop: auto (uvloop when"
        " installed), uvloop or asyncio",
    )
    args = parser.parse_args()
    from callmesh.workers.runtime import loop_factory, run

    run(main(args), loop_factory(args.event_loop))
