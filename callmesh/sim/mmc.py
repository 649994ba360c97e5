"""The textbook models as manifests: M/M/c and M/M/c+M as one queue served by one team.

Used by the theory tests (which compare the simulator with Erlang C and Erlang A), by
``bench/simulate.py`` and by ``callmesh staff --verify``-style checks: the same
:class:`~callmesh.api.Tenant` objects a user writes in YAML, so they run through the whole
simulator (manifests -> ACD configuration -> the real router and routing policy).
"""

from __future__ import annotations

from callmesh.api import AgentTeam, Queue, Tenant
from callmesh.sim.workload import Workload, parse_workload

__all__ = ["mmc_tenant", "mmc_workload"]


def mmc_tenant(
    agents: int,
    *,
    namespace: str = "mmc",
    queue: str = "q",
    strategy: str = "longest-idle-agent",
    sl_seconds: int = 20,
    short_abandon_seconds: int = 0,
) -> Tenant:
    """One voice queue, no wrap-up, one team of ``agents`` always-logged-in agents."""
    if not 1 <= agents <= 500:
        raise ValueError(f"agents must be 1..500 (one AgentTeam), got {agents}")
    q = Queue.model_validate(
        {
            "metadata": {"name": queue, "namespace": namespace},
            "spec": {
                "strategy": {"name": strategy},
                "tiers": [{"level": 1, "teams": ["team"]}],
                "wrapUpSeconds": 0,
                "serviceLevel": {
                    "percent": 80,
                    "seconds": sl_seconds,
                    "excludeAbandonedUnderSeconds": short_abandon_seconds,
                },
            },
        }
    )
    team = AgentTeam.model_validate(
        {
            "metadata": {"name": "team", "namespace": namespace},
            "spec": {
                "agents": [
                    {"id": f"a{i:03d}", "name": f"Agent {i}", "extension": f"{1000 + i}"}
                    for i in range(agents)
                ]
            },
        }
    )
    tenant = Tenant(namespace)
    tenant.add(q)
    tenant.add(team)
    return tenant


def mmc_workload(
    calls_per_hour: float,
    aht: float,
    *,
    patience: float | None = None,
    hours: int = 1,
    warmup_minutes: int = 0,
    queue: str = "q",
    namespace: str = "mmc",
) -> Workload:
    """Poisson arrivals, exponential handle time (and patience) for ``hours`` hours (1..24)."""
    if not 1 <= hours <= 24:
        raise ValueError(f"hours must be 1..24 (one simulated day), got {hours}")
    queue_traffic: dict[str, object] = {"handleTime": {"type": "exponential", "mean": aht}}
    if patience is not None:
        queue_traffic["patience"] = {"type": "exponential", "mean": patience}
    return parse_workload(
        {
            "apiVersion": "sim.callmesh.io/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": "mmc", "namespace": namespace},
            "spec": {
                "start": "00:00",
                "end": f"{hours:02d}:00" if hours < 24 else "24:00",
                "intervalMinutes": 60 * hours,
                "warmupMinutes": warmup_minutes,
                "drainMinutes": 1440,
                "arrivals": [{"queue": queue, "perHour": calls_per_hour}],
                "queues": {queue: queue_traffic},
            },
        },
        "mmc",
    )
