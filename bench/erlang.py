"""How fast are Erlang C / Erlang A evaluations and staffing searches? Prints the figures.

Usage: PYTHONSAFEPATH=1 .venv/bin/python bench/erlang.py

Single-process CPU time (time.process_time) per call, best of 5 repeats; the figures and
the command go in docs/performance.md, section "Staffing".
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable

from callmesh.wfm import (
    Interval,
    QueueLoad,
    StaffingTarget,
    erlang_a,
    erlang_c,
    required_staffing,
    staff,
)

AHT = 300.0
PATIENCE = 120.0
TARGET = StaffingTarget(service_level=0.8, answer_time=20.0)


def per_call(fn: Callable[[], object], *, min_seconds: float = 0.2, repeats: int = 5) -> float:
    """Best per-call CPU seconds over ``repeats`` runs of at least ``min_seconds`` each."""
    best = math.inf
    for _ in range(repeats):
        calls = 0
        start = time.process_time()
        while True:
            fn()
            calls += 1
            elapsed = time.process_time() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls)
    return best


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    return f"{seconds * 1e3:8.2f} ms"


def day_profile(peak_erlangs: float) -> list[float]:
    """48 half-hour arrival rates (per second): quiet night, morning and afternoon peaks."""
    rates = []
    for i in range(48):
        hour = i / 2
        shape = 0.05 + 0.95 * max(
            math.exp(-(((hour - 10.5) / 2.2) ** 2)), 0.85 * math.exp(-(((hour - 15) / 2.5) ** 2))
        )
        rates.append(peak_erlangs * shape / AHT)
    return rates


def main() -> None:
    print(f"callmesh.wfm benchmark: Python {platform.python_version()}, {platform.machine()}")
    print("\nOne evaluation at n agents (AHT 300 s, occupancy 95 %, Erlang A patience 120 s):")
    print(f"{'agents':>8} {'Erlang C':>12} {'Erlang A':>12}")
    for n in (10, 100, 1000, 5000):
        load_c = QueueLoad(0.95 * n / AHT, AHT)
        load_a = QueueLoad(0.95 * n / AHT, AHT, PATIENCE)
        tc = per_call(lambda load_c=load_c, n=n: erlang_c(load_c, n))
        ta = per_call(lambda load_a=load_a, n=n: erlang_a(load_a, n))
        print(f"{n:>8} {_fmt(tc):>12} {_fmt(ta):>12}")

    print("\nAgents needed for 80 % in 20 s (one queue):")
    print(f"{'Erlangs':>8} {'Erlang C':>12} {'agents':>7} {'Erlang A':>12} {'agents':>7}")
    for erlangs in (10.0, 100.0, 1000.0, 5000.0):
        load_c = QueueLoad(erlangs / AHT, AHT)
        load_a = QueueLoad(erlangs / AHT, AHT, PATIENCE)
        tc = per_call(lambda load_c=load_c: required_staffing(load_c, TARGET))
        ta = per_call(lambda load_a=load_a: required_staffing(load_a, TARGET))
        nc = required_staffing(load_c, TARGET).agents
        na = required_staffing(load_a, TARGET).agents
        print(f"{erlangs:>8.0f} {_fmt(tc):>12} {nc:>7} {_fmt(ta):>12} {na:>7}")

    print("\nA whole day, 48 half-hour intervals, peak 3,000 Erlangs:")
    for patience in (None, PATIENCE):
        intervals = [
            Interval(f"{i // 2:02d}:{30 * (i % 2):02d}", QueueLoad(rate, AHT, patience))
            for i, rate in enumerate(day_profile(3000.0))
        ]
        t = per_call(lambda intervals=intervals: staff(intervals, TARGET), repeats=3)
        peak = max(row.agents for row in staff(intervals, TARGET))
        model = "Erlang C" if patience is None else "Erlang A"
        print(f"  {model}: {_fmt(t)} for the day (peak {peak} agents)")


if __name__ == "__main__":
    main()
