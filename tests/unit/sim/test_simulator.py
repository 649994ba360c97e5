"""The event loop on the real router: determinism, and each behaviour the workload drives."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from callmesh.acd.strategies import BuiltinRoutingPolicy
from callmesh.acd.strategy import RoutingDecision, RoutingOutcome, RoutingRequest
from callmesh.api import AgentTeam, Queue, Tenant
from callmesh.api.validate import load_tenants
from callmesh.sim.commands import load_workload
from callmesh.sim.mmc import mmc_tenant, mmc_workload
from callmesh.sim.results import simulate, summarize
from callmesh.sim.simulator import ReplicationRecord, Simulator
from callmesh.sim.workload import parse_workload

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _conserved(rec: ReplicationRecord) -> None:
    for k in range(len(rec.offered)):
        assert rec.offered[k] == (
            rec.answered[k]
            + rec.abandoned[k]
            + rec.overflowed[k]
            + rec.timed_out[k]
            + rec.unfinished[k]
        )
    assert math.isclose(rec.waiting_area, rec.wait_total, rel_tol=1e-9, abs_tol=1e-6)


def _tenant(*objects: dict[str, Any]) -> Tenant:
    tenant = Tenant("t")
    for obj in objects:
        model = Queue if obj["kind"] == "Queue" else AgentTeam
        obj.setdefault("metadata", {}).setdefault("namespace", "t")
        tenant.add(model.model_validate(obj))
    return tenant


def _team(name: str, n: int, **spec: Any) -> dict[str, Any]:
    agents = [
        {"id": f"{name}-{i}", "name": f"A {i}", "extension": f"{100 + i}", **spec.pop("agent", {})}
        for i in range(n)
    ]
    return {"kind": "AgentTeam", "metadata": {"name": name}, "spec": {"agents": agents, **spec}}


def _workload(spec: dict[str, Any]) -> Any:
    base = {"start": "08:00", "end": "10:00", "intervalMinutes": 30, "drainMinutes": 120}
    return parse_workload({"metadata": {"name": "w"}, "spec": {**base, **spec}})


def test_same_seed_same_record_and_replications_differ() -> None:
    sim = Simulator(mmc_tenant(5), mmc_workload(240, 60.0, patience=90.0))
    a, b = sim.run(3, 0), sim.run(3, 0)
    assert a == b
    assert sim.run(3, 1).offered != a.offered
    assert sim.run(4, 0).offered != a.offered
    _conserved(a)


def test_abandons_are_left_out_of_asa_and_count_against_service_level() -> None:
    sim = Simulator(mmc_tenant(3, short_abandon_seconds=5), mmc_workload(300, 60.0, patience=20.0))
    rec = sim.run(1)
    _conserved(rec)
    total = summarize(sim, [rec], 1)["queues"][0]["total"]
    off, ans, ab = sum(rec.offered), sum(rec.answered), sum(rec.abandoned)
    assert ab > 0 and ans > 0
    assert total["asaSeconds"]["mean"] == pytest.approx(sum(rec.wait_answered) / ans, rel=1e-6)
    assert total["serviceLevelPercent"]["mean"] == pytest.approx(
        100 * sum(rec.answered_in_sl) / off, rel=1e-6
    )
    short = sum(rec.abandoned_short)
    assert 0 < short < ab
    assert total["serviceLevelExclShortAbandonsPercent"]["mean"] == pytest.approx(
        100 * sum(rec.answered_in_sl) / (off - short), rel=1e-6
    )


def test_rona_when_agents_let_offers_ring_out() -> None:
    tenant = mmc_tenant(4)
    workload = _workload(
        {
            "arrivals": [{"queue": "q", "perHour": 120}],
            "queues": {"q": {"handleTime": {"type": "exponential", "mean": 60}}},
            "agents": {
                "answer": {"type": "constant", "value": 2},
                "noAnswerPercent": 30,
                "readyAfterNoAnswer": {"type": "constant", "value": 10},
            },
        }
    )
    rec = Simulator(tenant, workload).run(2)
    _conserved(rec)
    assert sum(rec.rona) > 10
    assert sum(rec.answered) > 100
    # Every answered contact rang at least 2 s: nobody is answered without waiting.
    assert min(rec.wait_answered[k] / rec.answered[k] for k in range(4) if rec.answered[k]) >= 2


def test_overflow_moves_contacts_and_counts_them_in_both_queues() -> None:
    first = {
        "kind": "Queue",
        "metadata": {"name": "first"},
        "spec": {
            "tiers": [{"level": 1, "teams": ["small"]}],
            "maxWaitSeconds": 30,
            "overflow": {"action": "queue", "queue": "second"},
            "wrapUpSeconds": 0,
        },
    }
    second = {
        "kind": "Queue",
        "metadata": {"name": "second"},
        "spec": {"tiers": [{"level": 1, "teams": ["big"]}], "wrapUpSeconds": 5},
    }
    tenant = _tenant(first, second, _team("small", 1), _team("big", 6))
    workload = _workload(
        {
            "arrivals": [{"queue": "first", "perHour": 240}],
            "queues": {
                "first": {"handleTime": {"type": "exponential", "mean": 120}},
                "second": {"handleTime": {"type": "exponential", "mean": 60}},
            },
        }
    )
    sim = Simulator(tenant, workload)
    rec = sim.run(5)
    _conserved(rec)
    ni = sim.intervals
    moved = sum(rec.overflowed[0:ni])
    assert moved > 20
    assert sum(rec.offered[ni : 2 * ni]) == moved  # the second queue gets only overflow
    run = summarize(sim, [rec], 5)
    second_q = next(q for q in run["queues"] if q["name"] == "second")
    # AHT includes the router's wrap-up (5 s in the second queue).
    assert second_q["total"]["ahtSeconds"]["mean"] > 60
    assert second_q["total"]["erlang"] is None  # inflow from overflow: Erlang does not apply


def test_shifts_log_agents_in_and_out() -> None:
    team = _team(
        "late",
        3,
        shifts=[{"name": "late", "days": ["mon"], "start": "09:00", "end": "09:30"}],
    )
    queue = {
        "kind": "Queue",
        "metadata": {"name": "q"},
        "spec": {"tiers": [{"level": 1, "teams": ["late"]}], "wrapUpSeconds": 0},
    }
    workload = _workload(
        {
            "weekday": "mon",
            "drainMinutes": 0,
            "arrivals": [{"queue": "q", "perHour": 60}],
            "queues": {
                "q": {
                    "handleTime": {"type": "constant", "value": 30},
                    "patience": {"type": "constant", "value": 600},
                }
            },
        }
    )
    sim = Simulator(_tenant(queue, team), workload)
    rec = sim.run(1)
    _conserved(rec)
    ni = sim.intervals  # 08:00 08:30 09:00 09:30
    for a in range(3):
        on = [rec.agent_work[a * ni + i] + rec.agent_idle[a * ni + i] for i in range(ni)]
        assert on[0] == on[1] == 0.0
        assert on[2] == pytest.approx(1800.0)
        assert on[3] <= 30.0  # a contact in progress at 09:30 is finished, then logout
    # Nobody answers before 09:00: callers of 08:00-08:30 wait at least 30 min or hang up.
    assert rec.answered[0] == 0 or rec.wait_answered[0] / rec.answered[0] >= 1800 - 600
    assert sum(rec.answered) > 0 and sum(rec.abandoned) > 0


def test_chat_concurrency_lets_one_agent_hold_several_chats() -> None:
    queue = {
        "kind": "Queue",
        "metadata": {"name": "chat"},
        "spec": {"channel": "chat", "tiers": [{"level": 1, "teams": ["desk"]}]},
    }
    team = _team("desk", 1, agent={"capacity": {"voice": 0, "chat": 1}})
    tenant = _tenant(queue, team)
    spec: dict[str, Any] = {
        "arrivals": [{"queue": "chat", "perHour": 60}],
        "queues": {
            "chat": {
                "handleTime": {"type": "exponential", "mean": 150},
                "patience": {"type": "exponential", "mean": 120},
            }
        },
    }
    one = simulate(Simulator(tenant, _workload(spec)), 1, 3)["queues"][0]["total"]
    spec["teams"] = {"desk": {"chatConcurrency": 4}}
    four = simulate(Simulator(tenant, _workload(spec)), 1, 3)["queues"][0]["total"]
    assert four["abandonedPercent"]["mean"] < one["abandonedPercent"]["mean"] / 2
    assert four["answered"]["mean"] > one["answered"]["mean"]


def test_warmup_contacts_are_simulated_but_not_counted() -> None:
    sim = Simulator(mmc_tenant(5), mmc_workload(600, 30.0, hours=2, warmup_minutes=60))
    rec = sim.run(1)
    assert 0 < rec.contacts < rec.entered
    assert rec.agent_work[0] + rec.agent_idle[0] <= 3600.0 + 1e-6


class _CountingPolicy:
    """A routing policy as a plugin manager would be: decides through the built-ins."""

    def __init__(self) -> None:
        self.inner = BuiltinRoutingPolicy()
        self.routed = 0
        self.observed = 0

    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        self.routed += 1
        return self.inner.route(request)

    def observe(self, outcome: RoutingOutcome) -> None:
        self.observed += 1


def test_the_given_routing_policy_decides_with_a_fresh_one_per_replication() -> None:
    made: list[_CountingPolicy] = []

    def factory() -> _CountingPolicy:
        made.append(_CountingPolicy())
        return made[-1]

    sim = Simulator(mmc_tenant(3), mmc_workload(120, 60.0), policy_factory=factory)
    recs = [sim.run(1, r) for r in range(2)]
    assert len(made) == 2  # one per replication
    for policy, rec in zip(made, recs, strict=True):
        assert policy.routed >= sum(rec.answered) > 0
        assert policy.observed > 0


def test_example_ivr_routes_calls_by_menu_choice() -> None:
    tenant = load_tenants([EXAMPLES / "acme-insurance"])["acme-insurance"]
    workload = load_workload(EXAMPLES / "acme-insurance" / "simulate" / "workload.yaml")
    sim = Simulator(tenant, workload)
    rec = sim.run(1)
    _conserved(rec)
    run = summarize(sim, [rec], 1)
    (flow,) = run["flows"]
    outcomes = {k: v["mean"] for k, v in flow["outcomesPercent"].items()}
    assert outcomes["queued"] > 85  # 1, 2, 3, 9 and no key lead to queues
    assert 1 < outcomes["transferred"] < 10  # 0 = operator, 4% of callers
    assert flow["ivrSecondsMean"]["mean"] > 5
    offered = {q["name"]: q["total"]["offered"]["mean"] for q in run["queues"]}
    calls = flow["calls"]["mean"]
    # 40% press 3, 6% press 9 and 4% press nothing: about half of the calls reach support.
    assert offered["support"] / calls == pytest.approx(0.5, abs=0.06)
    assert offered["claims"] / calls == pytest.approx(0.22, abs=0.05)


def test_erlang_columns_only_where_the_model_applies() -> None:
    sim = Simulator(mmc_tenant(4), mmc_workload(120, 60.0, patience=90.0))
    run = summarize(sim, [sim.run(1), sim.run(1, 1)], 1)
    erlang = run["queues"][0]["total"]["erlang"]
    assert erlang["model"] == "erlang-a" and erlang["agents"] == 4 and erlang["exact"] is True
    assert erlang["trafficErlangs"] == pytest.approx(2.0)
    assert run["queues"][0]["intervals"][0]["erlang"] == erlang
    # Chat agents holding three chats each are not Erlang servers.
    tenant = load_tenants([EXAMPLES / "globex-telecom"])["globex-telecom"]
    workload = load_workload(EXAMPLES / "globex-telecom" / "simulate" / "workload.yaml")
    sim = Simulator(tenant, workload)
    run = summarize(sim, [sim.run(1)], 1)
    chat = next(q for q in run["queues"] if q["name"] == "chat-support")
    assert all(iv["erlang"] is None for iv in chat["intervals"])


def test_the_run_stops_once_the_day_is_over_and_the_center_empty() -> None:
    workload = _workload(
        {
            "drainMinutes": 1440,
            "arrivals": [{"queue": "q", "perHour": 60}, {"queue": "q", "perHour": 0}],
            "queues": {"q": {"handleTime": {"type": "constant", "value": 30}}},
        }
    )
    sim = Simulator(mmc_tenant(2), workload)
    rec = sim.run(1)
    assert rec.end_time < sim.day_seconds + 600
    assert sum(rec.unfinished) == 0
    # Agents logged in all day are measured all day, even after the last event.
    for a in range(2):
        on = sum(rec.agent_work[a * 4 : a * 4 + 4]) + sum(rec.agent_idle[a * 4 : a * 4 + 4])
        assert on == pytest.approx(sim.day_seconds)


class _VendorPolicy:
    """A vendor's routing: picks through the built-ins, signs its decisions."""

    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        decision = BuiltinRoutingPolicy().route(request)
        assert decision is not None
        return RoutingDecision(decision.agent_ids, "acme-vendor", "vendor choice")

    def observe(self, outcome: RoutingOutcome) -> None:
        """Nothing to learn."""


class _CrashingPolicy(_VendorPolicy):
    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        raise RuntimeError("vendor bug")


def test_routing_decisions_are_attributed_and_a_crashing_policy_loses_no_call() -> None:
    workload = mmc_workload(120, 60.0)
    vendor = Simulator(mmc_tenant(3), workload, policy_factory=_VendorPolicy)
    run = summarize(vendor, [vendor.run(1), vendor.run(1, 1)], 1)
    assert run["routing"]["decisionsPercent"]["acme-vendor"]["mean"] == 100.0
    assert run["routing"]["fallbackPercent"]["mean"] == 0.0
    crashing = Simulator(mmc_tenant(3), workload, policy_factory=_CrashingPolicy)
    rec = crashing.run(1)
    _conserved(rec)
    assert sum(rec.answered) == sum(rec.offered) > 0
    run = summarize(crashing, [rec], 1)
    assert run["routing"]["fallbackPercent"]["mean"] == 100.0
    assert set(run["routing"]["decisionsPercent"]) == {"engine:longest-idle-agent"}


def test_both_event_lists_give_the_same_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled build's native heap and the pure build's heapq order events alike.

    (Switching only works in the pure build, where ``_NATIVE`` is a module attribute; the
    compiled build runs its own twice.)"""
    import dataclasses

    from callmesh.sim import simulator

    sim = Simulator(mmc_tenant(6), mmc_workload(300, 60.0, patience=40.0))
    records = []
    for native in (True, False):
        monkeypatch.setattr(simulator, "_NATIVE", native)
        records.append(dataclasses.asdict(sim.run(seed=5)))
    assert records[0] == records[1] and records[0]["engine_ended"] > 200
