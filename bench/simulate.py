"""callmesh simulate vs Ciw vs SimPy on the same M/M/c model, side by side in one process.

The model of issue 6: 100 calls a minute, exponential handle time of 3 minutes, 320 agents
(offered load 300 Erlangs, 93.75% occupancy), first with callers who never hang up (Erlang
C), then with exponential patience of mean 2 minutes (Erlang A). Each simulator plays the
same simulated time; the figure is contacts simulated per second of CPU time
(``time.process_time``), best of ``--repeat`` runs, and the ratios of callmesh to the others.

callmesh runs the whole path (manifests -> ACD configuration -> the real ``Router`` ->
the routing policy), in two ways: with the tenant's plugin manager (``PluginManager``, what
``callmesh simulate`` uses: every decision goes through the plugin isolation layer) and with
the engine's ``BuiltinRoutingPolicy``. Ciw and SimPy run bare textbook models, so the
comparison is the cost of simulating with the real engine against dedicated simulators.

    .venv/bin/python bench/simulate.py [--hours 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import ciw
import simpy
from callmesh.plugins.manager import PluginManager

from callmesh import core_build
from callmesh.sim.mmc import mmc_tenant, mmc_workload
from callmesh.sim.simulator import Simulator

RATE = 100 / 60.0  # calls per second
AHT = 180.0
AGENTS = 320
PATIENCE = 120.0


def run_callmesh(hours: int, patience: float | None, plugins: bool) -> int:
    """Contacts simulated by callmesh (one replication)."""
    factory: Callable[[], PluginManager] | None = PluginManager if plugins else None
    sim = Simulator(
        mmc_tenant(AGENTS),
        mmc_workload(RATE * 3600, AHT, patience=patience, hours=hours),
        policy_factory=factory,
    )
    rec = sim.run(seed=1)
    return rec.entered


def run_ciw(hours: int, patience: float | None) -> int:
    """Contacts simulated by Ciw."""
    params: dict[str, object] = {
        "arrival_distributions": [ciw.dists.Exponential(rate=RATE)],
        "service_distributions": [ciw.dists.Exponential(rate=1 / AHT)],
        "number_of_servers": [AGENTS],
    }
    if patience is not None:
        params["reneging_time_distributions"] = [ciw.dists.Exponential(rate=1 / patience)]
    network = ciw.create_network(**params)
    ciw.seed(1)
    q = ciw.Simulation(network)
    q.simulate_until_max_time(hours * 3600.0)
    return len(q.get_all_records()) + sum(len(node.all_individuals) for node in q.transitive_nodes)


def run_simpy(hours: int, patience: float | None) -> int:
    """Contacts simulated by SimPy (a Resource with AGENTS servers)."""
    rng = random.Random(1)
    env = simpy.Environment()
    agents = simpy.Resource(env, capacity=AGENTS)
    count = 0

    def caller(env: simpy.Environment) -> object:
        with agents.request() as req:
            if patience is None:
                yield req
            else:
                result = yield req | env.timeout(rng.expovariate(1 / patience))
                if req not in result:
                    return
            yield env.timeout(rng.expovariate(1 / AHT))

    def source(env: simpy.Environment) -> object:
        nonlocal count
        while True:
            yield env.timeout(rng.expovariate(RATE))
            count += 1
            env.process(caller(env))

    env.process(source(env))
    env.run(until=hours * 3600.0)
    return count


def measure(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Best contacts per CPU second over ``repeat`` runs."""
    best = 0.0
    n = 0
    for _ in range(repeat):
        t0 = time.process_time()
        n = fn()
        cpu = time.process_time() - t0
        best = max(best, n / cpu)
    return best, n


def main() -> None:
    """Print contacts per CPU second for each simulator and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=1, help="simulated hours per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    args = parser.parse_args()
    print(
        f"M/M/c: {RATE * 60:.0f} calls/min, AHT {AHT:.0f} s, {AGENTS} agents,"
        f" {args.hours} h simulated per run, best of {args.repeat}"
    )
    print(f"callmesh core: {core_build()}")
    for label, patience in (("no abandonment", None), (f"patience {PATIENCE:.0f} s", PATIENCE)):
        rows = {
            "callmesh (Router + PluginManager)": measure(
                lambda p=patience: run_callmesh(args.hours, p, True), args.repeat
            ),
            "callmesh (Router + BuiltinRoutingPolicy)": measure(
                lambda p=patience: run_callmesh(args.hours, p, False), args.repeat
            ),
            "Ciw": measure(lambda p=patience: run_ciw(args.hours, p), args.repeat),
            "SimPy": measure(lambda p=patience: run_simpy(args.hours, p), args.repeat),
        }
        print(f"\n{label}")
        print(f"  {'simulator':42} {'contacts':>9} {'contacts/CPU s':>15}")
        for name, (speed, n) in rows.items():
            print(f"  {name:42} {n:9d} {speed:15,.0f}")
        ours = rows["callmesh (Router + PluginManager)"][0]
        print(
            f"  ratio callmesh (plugins) / SimPy = {ours / rows['SimPy'][0]:.2f}x,"
            f" / Ciw = {ours / rows['Ciw'][0]:.2f}x"
        )


if __name__ == "__main__":
    main()
