"""How long `callmesh validate` takes: the bundled examples and a large synthetic tenant.

Prints CPU seconds (time.process_time, best of 5) for reading + validating, with the CEL
memo cleared before each run so every rule is really evaluated.

    PYTHONSAFEPATH=1 .venv/bin/python bench/validate.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callmesh.api.cel import _evaluate_json, evaluate
from callmesh.api.validate import validate_objects, validate_paths

ROOT = Path(__file__).resolve().parents[1]


def best(fn: Callable[[], Any], runs: int = 5) -> float:
    """Best CPU time of ``runs`` calls, CEL memo cleared before each."""
    times = []
    for _ in range(runs):
        _evaluate_json.cache_clear()
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def big_tenant(agents: int, queues: int, nodes: int) -> list[dict[str, Any]]:
    """One namespace: a team of ``agents``, ``queues`` queues, a flow of ``nodes`` menu nodes."""
    ns = {"namespace": "bench"}
    api = "callmesh.io/v1alpha1"
    team = {
        "apiVersion": api,
        "kind": "AgentTeam",
        "metadata": {"name": "all", **ns},
        "spec": {
            "agents": [
                {
                    "id": f"a{i}",
                    "name": f"Agent {i}",
                    "extension": str(10000 + i),
                    "skills": [{"name": "english", "level": 1 + i % 10}],
                }
                for i in range(agents)
            ]
        },
    }
    qs = [
        {
            "apiVersion": api,
            "kind": "Queue",
            "metadata": {"name": f"q{i}", **ns},
            "spec": {
                "requiredSkills": [{"name": "english", "minLevel": 1 + i % 10}],
                "tiers": [{"level": 1, "teams": ["all"]}],
            },
        }
        for i in range(queues)
    ]
    flow_nodes: list[dict[str, Any]] = []
    for i in range(nodes - 1):
        nxt = f"n{i + 1}" if i + 1 < nodes - 1 else "to-q"
        flow_nodes.append(
            {
                "id": f"n{i}",
                "type": "menu",
                "menu": {
                    "prompt": {"file": f"menu{i}.wav"},
                    "options": [
                        {"digit": "1", "target": nxt},
                        {"digit": "2", "target": "to-q"},
                        {"digit": "9", "target": f"n{i}"},
                    ],
                },
            }
        )
    flow_nodes.append({"id": "to-q", "type": "queue", "queue": {"queue": "q0"}})
    flow = {
        "apiVersion": api,
        "kind": "IVRFlow",
        "metadata": {"name": "main", **ns},
        "spec": {"entry": "n0", "nodes": flow_nodes},
    }
    return [team, *qs, flow]


def main() -> None:
    """Print the figures."""
    examples = ROOT / "examples"
    assert validate_paths([examples]) == [], "examples must be valid"
    print(
        f"examples/ (read + validate, all tenants): {best(lambda: validate_paths([examples])):.3f} s"
    )
    for agents, queues, nodes in ((40, 3, 20), (500, 50, 200)):
        objects = big_tenant(agents, queues, nodes)
        assert validate_objects(objects) == []
        seconds = best(lambda objects=objects: validate_objects(objects))
        print(
            f"synthetic tenant, {agents} agents, {queues} queues, {nodes}-node flow: {seconds:.3f} s"
        )
    value = {"start": "09:00", "end": "17:00"}
    _evaluate_json.cache_clear()
    start = time.process_time()
    for i in range(200):
        evaluate("self.end > self.start", {**value, "n": i})
    per = (time.process_time() - start) / 200
    print(f"one CEL rule evaluation (self.end > self.start), uncached: {per * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
