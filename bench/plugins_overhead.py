"""Plugin manager overhead on the routing path, beside a direct call in the same run.

Workload: the ACD benchmark's (bench/acd_routing.py: 1,000 agents in 50 teams, 50 queues,
skills-best-match). Two measurements:

1. **Per decision**, in process CPU time (all threads), on fresh real requests captured
   from a live Router (so the candidate sets are the engine's indexed ones), best of 15
   interleaved rounds:
   * direct: ``strategy.choose(request)``, the built-in strategy called as a function;
   * bare pluggy: one ``firstresult`` hook call to a plugin wrapping that strategy;
   * manager: ``PluginManager.route(request)`` with only the built-ins (override chain
     empty, the queue's strategy called inline under exception isolation);
   * manager + a vendor override that answers None: the override runs on its plugin's
     thread lane under the 20 ms budget, then the built-in decides (the price of isolating
     untrusted synchronous code);
   * manager + the same override, answering a decision that is validated against the
     candidates;
   * manager + that override listed in ``CALLMESH_INLINE_PLUGINS`` (run in the caller's
     thread, late answers discarded, hangs not cut).
2. **End to end**: ``Router.enqueue`` decisions/s with ``policy=PluginManager`` against
   ``BuiltinRoutingPolicy`` (no plugin layer), same workload and seed.

Run: ``PYTHONSAFEPATH=1 .venv/bin/python bench/plugins_overhead.py [--agents N] [--steps N]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
from callmesh.plugins import hookimpl
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.manager import INLINE_ENV, PluginManager

from callmesh.acd import BuiltinRoutingPolicy, ContactSpec, Router
from callmesh.acd.strategies import BUILTIN_STRATEGIES
from callmesh.acd.strategy import RoutingDecision, RoutingOutcome, RoutingRequest

_spec = importlib.util.spec_from_file_location(
    "acd_routing_bench", Path(__file__).with_name("acd_routing.py")
)
assert _spec is not None and _spec.loader is not None
acd_bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = acd_bench
_spec.loader.exec_module(acd_bench)

QUEUES = acd_bench.QUEUES
bench_hookspec = pluggy.HookspecMarker("pluginbench")
bench_hookimpl = pluggy.HookimplMarker("pluginbench")


class _Spec:
    @bench_hookspec(firstresult=True)
    def pluginbench_route(self, request: RoutingRequest) -> RoutingDecision | None:  # type: ignore[empty-body]
        """Choose agents."""


class _Wrapped:
    @bench_hookimpl
    def pluginbench_route(self, request: RoutingRequest) -> RoutingDecision | None:
        return BUILTIN_STRATEGIES[request.strategy].choose(request)


class Recorder:
    """A RoutingPolicy that records the requests it is asked (and lets the built-ins decide)."""

    def __init__(self) -> None:
        self.requests: list[RoutingRequest] = []
        self._policy = BuiltinRoutingPolicy()

    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        self.requests.append(request)
        return self._policy.route(request)

    def observe(self, outcome: RoutingOutcome) -> None:
        return None


def drive(router: Router, agents: int, steps: int) -> float:
    """Enqueue/accept/complete ``steps`` contacts; seconds spent in ``enqueue`` (decisions)."""
    teams_logged = getattr(router, "_bench_logged", False)
    now = 0.0
    if not teams_logged:
        for agent_id in list(router._agents):
            router.login(agent_id, now)
    inflight: deque[str] = deque()
    limit = agents // 2
    spent = 0.0
    clock = time.perf_counter
    for i in range(steps):
        now += 0.001
        cid = f"c{i}"
        t0 = clock()
        effects = router.enqueue(ContactSpec(cid, f"q{i % QUEUES}"), now)
        spent += clock() - t0
        offer = effects[0] if effects else None
        if offer is not None and type(offer).__name__ == "Offer":
            router.accept(offer.agent_ids[0], cid, now)  # type: ignore[union-attr]
            inflight.append(cid)
        else:
            router.abandon(cid, now)
        if len(inflight) > limit:
            router.complete(inflight.popleft(), now)
    return spent


def vendor_manager(answer: str, inline: bool = False) -> PluginManager:
    """A manager with one vendor override plugin (run isolated on its thread lane)."""

    class Override:
        @hookimpl
        def callmesh_route_contact(self, request: RoutingRequest) -> RoutingDecision | None:
            """None, or the first candidate in tier/position order."""
            if answer == "none":
                return None
            first = next(iter(request.candidates))
            return RoutingDecision((first.id,), "vendor", "first")

    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("vendor", Override, source="bench")
    os.environ[INLINE_ENV] = "vendor" if inline else ""
    try:
        return PluginManager([{"name": "vendor"}], catalog=catalog)
    finally:
        del os.environ[INLINE_ENV]


def per_call(
    variants: list[tuple[str, Callable[[RoutingRequest], Any]]],
    fresh: Callable[[], list[RoutingRequest]],
    rounds: int = 15,
) -> list[tuple[str, float]]:
    """CPU microseconds per call of each variant: the best round's mean. Each variant gets
    freshly captured requests every round (a candidate set caches its answers), and the
    variants are interleaved round by round so a burst of load hits them alike."""
    best = {name: float("inf") for name, _ in variants}
    # Process CPU time (every thread of the process, the plugin lanes included), not wall
    # time: on a shared machine, time spent descheduled is not the path's cost.
    clock = time.process_time
    for _ in range(rounds):
        for name, fn in variants:
            requests = fresh()
            gc.collect()
            gc.disable()  # as timeit does: collection pauses are not the path's cost
            try:
                t0 = clock()
                for request in requests:
                    fn(request)
                took = clock() - t0
            finally:
                gc.enable()
            best[name] = min(best[name], took / len(requests))
    return [(name, best[name] * 1e6) for name, _ in variants]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    queues, teams = acd_bench.build(args.agents, args.seed)
    recorder = Recorder()
    live = Router(queues, teams, policy=recorder, seed=args.seed)
    drive(live, args.agents, 5000)
    now = 6.0  # after the warm-up clock (5,000 steps of 1 ms)

    def fresh() -> list[RoutingRequest]:
        """1,000 new requests from the live router (``preview`` changes nothing)."""
        recorder.requests.clear()
        for i in range(1000):
            live.preview(ContactSpec(f"p{i}", f"q{i % QUEUES}"), now)
        return list(recorder.requests)

    pm = pluggy.PluginManager("pluginbench")
    pm.add_hookspecs(_Spec)
    pm.register(_Wrapped())
    hook = pm.hook.pluginbench_route
    builtin = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    none_vendor = vendor_manager("none")
    answering_vendor = vendor_manager("decide")
    inline_vendor = vendor_manager("decide", inline=True)

    rows = per_call(
        [
            ("direct strategy.choose()", BUILTIN_STRATEGIES["skills-best-match"].choose),
            ("bare pluggy firstresult hook", lambda r: hook(request=r)),
            ("PluginManager.route (built-ins)", builtin.route),
            ("PluginManager.route + isolated vendor (None)", none_vendor.route),
            ("PluginManager.route + isolated vendor (decides)", answering_vendor.route),
            ("PluginManager.route + inline vendor (decides)", inline_vendor.route),
        ],
        fresh,
    )
    direct = rows[0][1]
    print(
        f"per decision, 1,000 fresh real requests a round, {args.agents} agents, "
        "best of 15 interleaved rounds:"
    )
    print(f"  {'path':50} {'CPU us/dec.':>12} {'decisions/s':>12} {'x direct':>9}")
    for name, us in rows:
        print(f"  {name:50} {us:12.2f} {1e6 / us:12,.0f} {us / direct:9.2f}")
    overhead = rows[2][1] - direct
    print(f"  manager overhead over a direct call: {overhead:.2f} us ({rows[2][1] / direct:.2f}x)")

    print(f"\nend to end, Router.enqueue, {args.steps} contacts:")
    for name, policy in (
        ("BuiltinRoutingPolicy (no plugin layer)", BuiltinRoutingPolicy()),
        (
            "PluginManager (built-ins)",
            PluginManager(catalog=PluginCatalog(environ={}, entry_points=[])),
        ),
    ):
        router = Router(queues, teams, policy=policy, seed=args.seed)
        spent = drive(router, args.agents, args.steps)
        print(f"  {name:50} {args.steps / spent:12,.0f} decisions/s")
    for manager in (builtin, none_vendor, answering_vendor, inline_vendor):
        asyncio.run(manager.aclose())


if __name__ == "__main__":
    main()
