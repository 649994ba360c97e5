"""Little's law and flow conservation hold in every run, whatever the configuration.

Hypothesis draws small centers (agents, load, patience, ring time, RONA, wrap-up, max wait
with overflow to a second queue or to voicemail, shifts) and each run must satisfy, per
replication:

- Little's law on the sample path: the time integral of the number of contacts waiting
  equals the sum of their waits (the simulator integrates the count from its own events;
  the waits come from the router's ``ContactEnded.waited``);
- flow conservation per queue and interval: offered = answered + abandoned + overflowed +
  timed out + unfinished;
- every contact that entered the ACD left it once (or is still in it at the end);
- arrivals per interval follow the piecewise-constant rates.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.api import AgentTeam, Queue, Tenant
from callmesh.sim.simulator import Simulator
from callmesh.sim.workload import parse_workload


def _center(draw: Any) -> tuple[Tenant, Any]:
    agents = draw(st.integers(1, 4))
    overflow = draw(st.sampled_from(["none", "queue", "voicemail"]))
    wrap = draw(st.integers(0, 30))
    shift_end = draw(st.sampled_from([None, "08:40"]))
    first_spec: dict[str, Any] = {
        "tiers": [{"level": 1, "teams": ["a"]}],
        "wrapUpSeconds": wrap,
        "offerTimeoutSeconds": draw(st.integers(5, 20)),
    }
    if overflow != "none":
        first_spec["maxWaitSeconds"] = draw(st.integers(20, 300))
        first_spec["overflow"] = (
            {"action": "queue", "queue": "second"}
            if overflow == "queue"
            else {"action": "voicemail", "mailbox": "m1"}
        )
    tenant = Tenant("t")
    tenant.add(
        Queue.model_validate({"metadata": {"name": "first", "namespace": "t"}, "spec": first_spec})
    )
    tenant.add(
        Queue.model_validate(
            {
                "metadata": {"name": "second", "namespace": "t"},
                "spec": {
                    "tiers": [
                        {"level": 1, "teams": ["b"]},
                        {"level": 2, "teams": ["a"], "escalateAfterSeconds": 30},
                    ]
                },
            }
        )
    )
    team_a: dict[str, Any] = {
        "agents": [{"id": f"a{i}", "name": "A", "extension": f"{100 + i}"} for i in range(agents)]
    }
    if shift_end:
        team_a["shifts"] = [{"name": "s", "days": ["mon"], "start": "08:00", "end": shift_end}]
    tenant.add(
        AgentTeam.model_validate({"metadata": {"name": "a", "namespace": "t"}, "spec": team_a})
    )
    tenant.add(
        AgentTeam.model_validate(
            {
                "metadata": {"name": "b", "namespace": "t"},
                "spec": {"agents": [{"id": "b0", "name": "B", "extension": "200"}]},
            }
        )
    )
    aht = draw(st.sampled_from([30.0, 90.0]))
    load = draw(st.floats(0.3, 1.6))
    rate = load * agents / aht * 3600
    patience = draw(
        st.sampled_from(
            [None, {"type": "exponential", "mean": 60}, {"type": "constant", "value": 45}]
        )
    )
    traffic: dict[str, Any] = {"handleTime": {"type": "exponential", "mean": aht}}
    if patience is not None:
        traffic["patience"] = patience
    workload = parse_workload(
        {
            "metadata": {"name": "w"},
            "spec": {
                "weekday": "mon",
                "start": "08:00",
                "end": "09:00",
                "intervalMinutes": 15,
                "warmupMinutes": draw(st.sampled_from([0, 10])),
                "drainMinutes": draw(st.sampled_from([0, 30])),
                "arrivals": [{"queue": "first", "perHour": [rate, 0, rate * 1.5, rate]}],
                "queues": {"first": traffic, "second": traffic},
                "agents": {
                    "answer": draw(
                        st.sampled_from(
                            [
                                {"type": "constant", "value": 0},
                                {"type": "uniform", "low": 1, "high": 6},
                            ]
                        )
                    ),
                    "noAnswerPercent": draw(st.sampled_from([0, 10])),
                    "readyAfterNoAnswer": {"type": "constant", "value": 20},
                },
            },
        }
    )
    return tenant, workload


@settings(max_examples=15, deadline=None)
@given(st.data(), st.integers(0, 2**32))
def test_little_and_conservation_hold_in_every_run(data: st.DataObject, seed: int) -> None:
    tenant, workload = _center(data.draw)
    sim = Simulator(tenant, workload)
    rec = sim.run(seed)
    assert math.isclose(rec.waiting_area, rec.wait_total, rel_tol=1e-9, abs_tol=1e-6)
    for k in range(len(rec.offered)):
        assert rec.offered[k] == (
            rec.answered[k]
            + rec.abandoned[k]
            + rec.overflowed[k]
            + rec.timed_out[k]
            + rec.unfinished[k]
        )
    still_waiting = sum(rec.unfinished)
    assert rec.engine_ended + still_waiting >= rec.entered - still_waiting
    # No arrival in an interval with rate 0 (the second quarter hour).
    assert rec.offered[1] == 0
    # Occupancy is a share of logged-in time.
    for a in range(len(sim.agent_names)):
        for i in range(sim.intervals):
            k = a * sim.intervals + i
            assert 0 <= rec.agent_work[k] + rec.agent_idle[k] <= sim.interval_seconds + 1e-6
