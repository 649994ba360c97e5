"""In-process ACD routing benchmark: decisions per second with skills-best-match.

Workload: N agents in 50 teams (one per queue), 50 queues, 20 skills. Every agent has its
team's skill plus three random others (levels 1..10); queue *i* requires skill *i mod 20*,
serves team *i* in tier 1 and team *i+1* in tier 2 after 30 s. All agents are logged in;
half of them are kept busy (a contact completes when the number in progress passes N/2),
so the indexes hold a realistic mix of free and busy agents. Each step enqueues a contact
in the next queue (round the 50), which the router offers at once, and accepts it.

Printed figures (one core, one process; timed in process CPU time, so other processes on a
shared machine disturb them less):

* engine: ``Router.enqueue`` with skills-best-match called through a real pluggy
  ``firstresult`` hook (the shape of a vendor's ``callmesh_route_contact``), timing only
  the enqueue call (the routing decision, the reservation and the offer effect);
* engine, full cycle: enqueue + accept + complete, per contact;
* engine with the plugin manager: the tenant's real ``RoutingPolicy``
  (``callmesh.plugins.manager.PluginManager`` with the built-in plugins: the override chain,
  then the queue's strategy as registered through ``callmesh_routing_strategies``);
* engine without the hook: the same run with the router's built-in policy called directly
  (no pluggy), to show what the hook costs and what the engine itself costs;
* engine, decision only: ``Router.preview`` (build the request, call the hook, check the
  decision) on the same state, without reserving the agent or recording anything;
* linear-scan baseline: the same decisions made by scanning every agent record for
  state, queue membership, tier and skill, and keeping the best, in the same process. It
  is timed with half the agents busy, as the engine is for (nearly) all its run: its first
  N/2 steps, which fill half the agents, are made untimed (by the same scan over only the
  queue's tier-1 members, the only records it does not skip: the same choices, quickly),
  then ``--steps / 10`` steps (at least 1,000) are timed. (Until this was done it timed
  ``--steps / 10`` steps from an empty start: at 10,000 agents it never reached 50% busy.)
* the engine again at 10,000 agents.

Like the router worker (which asks ``next_deadline`` after every operation to arm its timer),
the driver calls ``Router.next_deadline`` after each step, outside the timed calls.

It also prints a calibration of the machine: the rate of a bare per-skill heap pick and the
cost of one pluggy hook call (the issue quotes 2-3 us on its reference machine), so figures
from a slower or shared machine can be put in proportion.

Run: ``PYTHONSAFEPATH=1 .venv/bin/python bench/acd_routing.py [--steps N] [--repeat R]``

Instructions per step, independent of the machine's load: run ``--once VARIANT`` under
``valgrind --tool=callgrind`` at two ``--steps`` (e.g. 500 and 1500; the first 500 fill the
agents up to the steady state) and divide the difference of the "Collected" totals by the
difference of the steps.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import time
from collections import deque
from dataclasses import dataclass

import pluggy
from callmesh.plugins.manager import PluginManager

from callmesh import core_build
from callmesh.acd import (
    BUILTIN_STRATEGIES,
    AgentConfig,
    BuiltinRoutingPolicy,
    ContactSpec,
    QueueConfig,
    Router,
    RoutingDecision,
    RoutingOutcome,
    RoutingPolicy,
    RoutingRequest,
    TeamConfig,
    TierConfig,
)

QUEUES = 50
SKILLS = 20
_OVERHEAD = 0.0  # timer_overhead(), measured in main()
hookspec = pluggy.HookspecMarker("acdbench")
hookimpl = pluggy.HookimplMarker("acdbench")


class _Spec:
    @hookspec(firstresult=True)
    def acdbench_route(self, request: RoutingRequest) -> RoutingDecision | None:  # type: ignore[empty-body]
        """Choose agents for a contact."""


class _BuiltinPlugin:
    """Decides with the queue's built-in strategy, looked up by name as the manager does."""

    @hookimpl
    def acdbench_route(self, request: RoutingRequest) -> RoutingDecision | None:
        strategy = BUILTIN_STRATEGIES.get(request.strategy)
        return None if strategy is None else strategy.choose(request)


class HookPolicy:
    """A RoutingPolicy that decides through one pluggy hook call, like the plugin manager."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager("acdbench")
        self._pm.add_hookspecs(_Spec)
        self._pm.register(_BuiltinPlugin())
        self._hook = self._pm.hook.acdbench_route

    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        result: RoutingDecision | None = self._hook(request=request)
        return result

    def observe(self, outcome: RoutingOutcome) -> None:
        return None


def build(agents: int, seed: int) -> tuple[list[QueueConfig], list[TeamConfig]]:
    """The benchmark's queues and teams."""
    rng = random.Random(seed)
    per_team = agents // QUEUES
    teams = []
    for t in range(QUEUES):
        members = []
        for i in range(per_team):
            skills = {f"s{t % SKILLS}": rng.randint(1, 10)}
            for s in rng.sample(range(SKILLS), 3):
                skills.setdefault(f"s{s}", rng.randint(1, 10))
            members.append(AgentConfig(f"t{t}a{i}", skills))
        teams.append(TeamConfig(f"team{t}", tuple(members)))
    queues = [
        QueueConfig(
            f"q{q}",
            (TierConfig((f"team{q}",)), TierConfig((f"team{(q + 1) % QUEUES}",), 30.0)),
            strategy="skills-best-match",
            skills={f"s{q % SKILLS}": 1},
        )
        for q in range(QUEUES)
    ]
    return queues, teams


@dataclass
class Result:
    decisions_per_s: float
    cycles_per_s: float
    offered: int
    previews_per_s: float = 0.0


def timer_overhead(repeat: int = 5, calls: int = 20_000) -> float:
    """CPU seconds one ``t0 = clock(); ...; clock() - t0`` pair adds to what it times.

    ``process_time`` is a system call (about 2.7 us on the shared reference machine, more
    than a quarter of a 10 us decision): every per-call figure below has this subtracted.
    """
    clock = time.process_time
    best = math.inf
    for _ in range(repeat):
        total = 0.0
        for _ in range(calls):
            t0 = clock()
            total += clock() - t0
        best = min(best, total / calls)
    return best


def run_engine(
    agents: int, steps: int, seed: int, *, policy: str = "hook", preview: bool = False
) -> Result:
    """Drive the Router; return decisions/s (enqueue only) and full cycles/s.

    ``policy``: ``hook`` (a pluggy hook call per decision), ``manager`` (the plugin manager)
    or ``direct`` (the built-in policy, no plugin layer). ``preview`` also times a
    ``Router.preview`` of each contact just before its enqueue (``previews_per_s``); it is a
    separate run because the preview warms the caches for the enqueue that follows.
    """
    queues, teams = build(agents, seed)
    routing: RoutingPolicy
    if policy == "hook":
        routing = HookPolicy()
    elif policy == "manager":
        routing = PluginManager()
    else:
        routing = BuiltinRoutingPolicy()
    router = Router(queues, teams, policy=routing, seed=seed)
    now = 0.0
    for team in teams:
        for agent in team.agents:
            router.login(agent.id, now)
    inflight: deque[str] = deque()
    limit = agents // 2
    enqueue_time = preview_time = 0.0
    offered = 0
    clock = time.process_time
    start = clock()
    for i in range(steps):
        now += 0.001
        cid = f"c{i}"
        spec = ContactSpec(cid, f"q{i % QUEUES}")
        if preview:
            t0 = clock()
            router.preview(spec, now)
            preview_time += clock() - t0
        t0 = clock()
        effects = router.enqueue(spec, now)
        enqueue_time += clock() - t0
        offer = effects[0] if effects else None
        if offer is not None and type(offer).__name__ == "Offer":
            offered += 1
            router.accept(offer.agent_ids[0], cid, now)  # type: ignore[union-attr]
            inflight.append(cid)
        else:
            router.abandon(cid, now)
        if len(inflight) > limit:
            router.complete(inflight.popleft(), now)
        router.next_deadline()
    total = clock() - start - preview_time
    router.check_invariants()
    overhead = steps * _OVERHEAD
    previews = steps / (preview_time - overhead) if preview else 0.0
    return Result(steps / (enqueue_time - overhead), steps / total, offered, previews)


def run_linear(agents: int, steps: int, seed: int) -> Result:
    """The same decisions by a linear scan over every agent (the naive baseline).

    Timed in the steady state the engine spends its run in: first, untimed, the steps that
    fill half the agents (N/2 steps: every contact is offered here), each deciding by the
    same scan over only the queue's tier-1 members, which are the only records the full scan
    does not skip, so the choices and the resulting state are the same; then ``steps``
    steps, each scanning every agent record, are timed.
    """
    queues, teams = build(agents, seed)
    records = []  # [id, skills, idle_since, busy, {queue: (tier, delay)}]
    tier_of: dict[str, dict[str, tuple[int, float]]] = {}
    for q in queues:
        for level, tier in enumerate(q.tiers, start=1):
            for team_name in tier.teams:
                tier_of.setdefault(team_name, {})[q.name] = (level, tier.delay)
    for team in teams:
        for agent in team.agents:
            records.append([agent.id, dict(agent.skills), 0.0, False, tier_of[team.name]])
    by_id = {r[0]: r for r in records}
    required = {q.name: dict(q.skills) for q in queues}
    # For the untimed warm-up only: per queue, the records the scan does not skip for their
    # tier (those eligible at once), in the order of ``records`` (the first of equal keys wins).
    eligible_now = {
        q.name: [r for r in records if (t := r[4].get(q.name)) is not None and t[1] <= 0.0]
        for q in queues
    }
    inflight: deque[str] = deque()
    limit = agents // 2
    warmup = limit
    decide_time = 0.0
    offered = 0
    now = 0.0
    clock = time.process_time
    start = 0.0
    for i in range(warmup + steps):
        timed = i >= warmup
        if i == warmup:
            assert len(inflight) == limit, "the warm-up did not fill half the agents"
            start = clock()
        now += 0.001
        queue = f"q{i % QUEUES}"
        skills = required[queue]
        (skill,) = skills
        candidates = records if timed else eligible_now[queue]
        t0 = clock()
        best = None
        best_key: tuple[int, int, float] | None = None
        for rec in candidates:
            if rec[3]:
                continue
            tier = rec[4].get(queue)
            if tier is None or tier[1] > 0.0:
                continue
            level = rec[1].get(skill, 0)
            if level < skills[skill]:
                continue
            key = (tier[0], -level, rec[2])
            if best_key is None or key < best_key:
                best, best_key = rec, key
        if best is not None:
            best[3] = True
        if timed:
            decide_time += clock() - t0
        if best is not None:
            offered += timed  # counted in the timed steps only
            inflight.append(best[0])
        if len(inflight) > limit:
            done = by_id[inflight.popleft()]
            done[3] = False
            done[2] = now
    total = clock() - start
    return Result(steps / (decide_time - steps * _OVERHEAD), steps / total, offered)


def calibrate(seconds: float = 1.0) -> tuple[float, float]:
    """This machine's speed: bare per-skill heap picks/s and one pluggy hook call (us)."""
    rng = random.Random(0)
    heaps = [[(rng.random(), f"a{i}") for i in range(20)] for _ in range(SKILLS)]
    for h in heaps:
        heapq.heapify(h)
    clock = time.process_time
    picks = 0
    start = clock()
    while clock() - start < seconds:  # the clock is a system call: read it every 1,000 picks
        for _ in range(50):
            for h in heaps:  # pick the longest idle, then it becomes idle again
                _, agent = heapq.heappop(h)
                heapq.heappush(h, (picks, agent))
                picks += 1
    heap_rate = picks / (clock() - start)

    class _Nothing:
        @hookimpl
        def acdbench_route(self, request: RoutingRequest) -> RoutingDecision | None:
            return None

    pm = pluggy.PluginManager("acdbench")
    pm.add_hookspecs(_Spec)
    pm.register(_Nothing())
    hook = pm.hook.acdbench_route
    calls = 20_000
    t0 = clock()
    for _ in range(calls):
        hook(request=None)
    hook_us = (clock() - t0) / calls * 1e6
    return heap_rate, hook_us


def main() -> None:
    """Print the figures (each the best of ``--repeat`` runs: the machine may be shared)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--once",
        choices=["hook", "manager", "direct", "hook-preview", "direct-preview"],
        help="only drive one engine run of --steps at 1,000 agents and print nothing: for"
        " instruction counts under valgrind (run it at two --steps and take the difference)",
    )
    args = parser.parse_args()
    if args.once:
        policy, _, preview = args.once.partition("-")
        run_engine(1_000, args.steps, args.seed, policy=policy, preview=bool(preview))
        return
    global _OVERHEAD
    _OVERHEAD = timer_overhead()
    runs = [calibrate() for _ in range(args.repeat)]
    heap_rate, hook_us = max(r[0] for r in runs), min(r[1] for r in runs)
    print(f"ACD routing, skills-best-match, {QUEUES} queues x {SKILLS} skills, one core")
    print(f"core: {core_build()}")
    print(
        f"calibration: bare per-skill heap pick {heap_rate:,.0f}/s,"
        f" one pluggy hook call {hook_us:.1f} us (the issue's reference machine: 2-3 us);"
        f" timer overhead {_OVERHEAD * 1e6:.2f} us per timed call, subtracted"
    )
    print(f"{'agents':>7}  {'variant':<44} {'decisions/s':>12} {'cycles/s':>10}")
    variants = (
        ("hook", "engine, via a pluggy routing hook"),
        ("manager", "engine, via the PluginManager (production)"),
        ("direct", "engine, built-in policy without plugins"),
    )
    for agents in (1_000, 10_000):
        best: dict[str, Result] = {}
        # Interleaved repeats: a burst of load from other processes hits every variant alike.
        for _ in range(args.repeat):
            for key, _name in variants:
                result = run_engine(agents, args.steps, args.seed, policy=key)
                if key not in best or result.decisions_per_s > best[key].decisions_per_s:
                    best[key] = result
            result = run_engine(agents, args.steps, args.seed, policy="hook", preview=True)
            if "preview" not in best or result.previews_per_s > best["preview"].previews_per_s:
                best["preview"] = result
            result = run_linear(agents, max(args.steps // 10, 1000), args.seed)
            if "linear" not in best or result.decisions_per_s > best["linear"].decisions_per_s:
                best["linear"] = result
        rows = [(name, best[key]) for key, name in variants]
        rows.append(("linear scan of every agent (baseline)", best["linear"]))
        for name, result in rows:
            print(
                f"{agents:>7}  {name:<44} {result.decisions_per_s:>12,.0f}"
                f" {result.cycles_per_s:>10,.0f}"
            )
        engine, linear, previews = best["hook"], best["linear"], best["preview"].previews_per_s
        print(
            f"{agents:>7}  {'engine decision only (Router.preview), hook':<44} {previews:>12,.0f}"
        )
        print(
            f"{agents:>7}  engine (hook) / baseline: "
            f"{engine.decisions_per_s / linear.decisions_per_s:.1f}x enqueue-to-offer,"
            f" {previews / linear.decisions_per_s:.1f}x decision only"
            f" (offered {engine.offered} of {args.steps})"
        )
    print("decisions/s: enqueue -> decision -> offer; cycles/s: enqueue + accept + complete")


if __name__ == "__main__":
    main()
