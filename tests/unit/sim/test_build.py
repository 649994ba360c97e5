"""Manifests to the engine's configuration, and shifts to login/logout times."""

from __future__ import annotations

from typing import Any

from callmesh.acd.strategy import Channel
from callmesh.api import AgentTeam, Queue, Tenant
from callmesh.sim.build import Shift, build_acd, shift_plan
from callmesh.sim.workload import parse_workload


def _tenant(teams: list[dict[str, Any]], queues: list[dict[str, Any]]) -> Tenant:
    tenant = Tenant("t")
    for spec in teams:
        tenant.add(
            AgentTeam.model_validate(
                {"metadata": {"name": spec.pop("name"), "namespace": "t"}, "spec": spec}
            )
        )
    for spec in queues:
        tenant.add(
            Queue.model_validate(
                {"metadata": {"name": spec.pop("name"), "namespace": "t"}, "spec": spec}
            )
        )
    return tenant


def _agents(*ids: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": a, "name": a, "extension": f"{100 + i}", **extra} for i, a in enumerate(ids)]


def _workload(**spec: Any) -> Any:
    base: dict[str, Any] = {
        "weekday": "tue",
        "start": "08:00",
        "end": "12:00",
        "intervalMinutes": 60,
        "arrivals": [{"queue": "q", "perHour": 1}],
        "queues": {"q": {"handleTime": {"type": "constant", "value": 60}}},
    }
    return parse_workload({"metadata": {"name": "w"}, "spec": {**base, **spec}})


def test_shifts_for_the_weekday_are_merged_clipped_and_per_agent() -> None:
    tenant = _tenant(
        [
            {
                "name": "a",
                "agents": _agents("x", "y", "z"),
                "shifts": [
                    {"name": "early", "days": ["tue"], "start": "07:00", "end": "09:00"},
                    {
                        "name": "mid",
                        "days": ["tue"],
                        "start": "08:30",
                        "end": "10:00",
                        "agents": ["x"],
                    },
                    {
                        "name": "late",
                        "days": ["tue"],
                        "start": "11:00",
                        "end": "23:00",
                        "agents": ["y"],
                    },
                    {"name": "monday", "days": ["mon"], "start": "08:00", "end": "12:00"},
                ],
            },
            {"name": "b", "agents": _agents("w")},  # no shifts: always logged in
        ],
        [{"name": "q", "tiers": [{"level": 1, "teams": ["a", "b"]}]}],
    )
    horizon = 5 * 3600.0  # 08:00 .. 13:00
    plan = shift_plan(tenant, _workload(), horizon)
    assert plan == [
        Shift("w", 0.0, None),
        Shift("x", 0.0, 2 * 3600.0),  # 07:00-09:00 and 08:30-10:00 merged, clipped at 08:00
        Shift("y", 0.0, 3600.0),
        Shift("y", 3 * 3600.0, None),  # 11:00 to after the end of the run
        Shift("z", 0.0, 3600.0),
    ]


def test_engine_configuration_from_the_manifests() -> None:
    tenant = _tenant(
        [
            {
                "name": "chat",
                "agents": _agents("c1", capacity={"voice": 0, "chat": 2}),
                "wrapUpSeconds": 5,
            },
            {"name": "voice", "agents": _agents("v1", skills=[{"name": "es", "level": 7}])},
        ],
        [
            {
                "name": "q",
                "tiers": [
                    {"level": 2, "teams": ["voice"], "escalateAfterSeconds": 30},
                    {"level": 1, "teams": ["chat"]},
                ],
                "channel": "chat",
                "maxWaitSeconds": 60,
                "overflow": {"action": "hangup"},
                "requiredSkills": [{"name": "es", "minLevel": 3}],
                "wrapUpSeconds": 20,
            },
        ],
    )
    setup = build_acd(tenant, _workload(teams={"chat": {"chatConcurrency": 4}}))
    (queue,) = setup.queues
    assert [t.teams for t in queue.tiers] == [("chat",), ("voice",)]
    assert [t.delay for t in queue.tiers] == [0.0, 30.0]
    assert queue.channel is Channel.CHAT and queue.skills == {"es": 3}
    assert queue.max_wait == 60.0 and queue.overflow is None  # hangup: the contact times out
    assert queue.expected_handle_time == 60.0
    teams = {t.name: t for t in setup.teams}
    assert teams["chat"].agents[0].capacity[Channel.CHAT] == 4  # the workload's override
    assert teams["voice"].agents[0].skills == {"es": 7}
    assert teams["chat"].wrap_up_time == 5.0  # the team's wrap-up overrides the queue's
