"""Replications on several processes: the same records, in the same order, as on one.

Replications are independent by construction (each has its own seed and its own router),
so ``callmesh simulate --jobs N`` plays them on a pool of worker processes. The pool is the
caller's (:class:`concurrent.futures.Executor`, created once per command); what runs on it
must pickle: a module-level function with picklable arguments (a
:class:`~callmesh.sim.simulator.Simulator` is sent as its inputs, the tenant, the workload
and the routing-policy factory, and rebuilt once per worker process: see
:func:`callmesh.sim.results.simulate`). Results come back in replication order, whatever
order they finish in, so the output does not depend on the number of jobs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["CpuTime", "Replicate", "available_cpus", "run_replications", "worker_pool"]

T = TypeVar("T")

Progress = Callable[[float], None]
Replicate = Callable[[int, Progress | None], T]
"""``fn(r, step)``: replication ``r``; ``step`` (None on a worker) gets its done fraction."""


@dataclass
class CpuTime:
    """CPU seconds the replications used, in whichever processes they ran."""

    inbound: float = 0.0
    campaigns: float = 0.0


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity mask (where the platform has one), capped by
    a CPU quota of its cgroup (a container's CPU limit: a pod limited to 2 CPUs on a 64-core
    node gets 2 workers, not 64)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup)
    return max(1, min(cpus, math.ceil(quota))) if quota is not None else cpus


def _cgroup_quota(root: Path) -> float | None:
    """The CPU quota of cgroup v2 (``cpu.max``) or v1 (``cpu/cpu.cfs_quota_us``), in CPUs."""
    try:
        limit, period = (root / "cpu.max").read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:
        limit = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        return None if int(limit) <= 0 else int(limit) / int(period)
    except (OSError, ValueError):
        return None


@contextmanager
def worker_pool(jobs: int, tasks: int) -> Iterator[Executor | None]:
    """A pool of ``jobs`` worker processes (0: one per available CPU) for ``tasks``
    replications at a time, shut down on leaving; None when one process would do (then
    they run here)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(jobs or available_cpus(), tasks)
    if workers <= 1:
        yield None
        return
    # spawn, not fork: a progress bar's thread may hold a lock at the moment of a fork
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def _timed(fn: Replicate[T], r: int) -> tuple[T, float]:
    """``fn(r)`` on a worker, and the CPU seconds it took there."""
    start = time.process_time()
    out = fn(r, None)
    return out, time.process_time() - start


def run_replications(
    fn: Replicate[T],
    count: int,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> tuple[list[T], float]:
    """``fn(r)`` for ``r`` in ``0..count-1``: the results in that order, and their CPU seconds.

    Without ``executor``, one after the other in this process (``progress`` then also sees
    each replication's own progress); with one, all submitted at once (``fn`` must pickle),
    ``progress`` told as each finishes. An exception in a replication (or an interrupt)
    cancels those not started yet and is raised here.
    """
    if executor is None:
        results: list[T] = []
        start = time.process_time()
        for r in range(count):
            step: Progress | None = None
            if progress is not None:

                def step(fraction: float, r: int = r, tell: Progress = progress) -> None:
                    tell((r + fraction) / count)

            results.append(fn(r, step))
        return results, time.process_time() - start
    futures = [executor.submit(_timed, fn, r) for r in range(count)]
    try:
        for done, future in enumerate(as_completed(futures), start=1):
            future.result()  # a failed replication stops the run now, as on one process
            if progress is not None:
                progress(done / count)
    except BaseException:  # that, or Ctrl-C: the queued replications are not started
        for future in futures:
            future.cancel()
        raise
    timed = [f.result() for f in futures]
    return [out for out, _ in timed], sum(cpu for _, cpu in timed)
