"""Workforce management: Erlang C and Erlang A staffing.

- :mod:`callmesh.wfm.erlang`: KPIs of one queue with n agents (Erlang B, C and A).
- :mod:`callmesh.wfm.staffing`: the fewest agents meeting a target, per interval.
- :mod:`callmesh.wfm.commands`: the ``callmesh staff`` command.

KPI definitions are stated in :mod:`callmesh.wfm.erlang` and ``docs/staffing.md``.
"""

from callmesh.wfm.erlang import (
    Performance,
    QueueLoad,
    erlang_a,
    erlang_b,
    erlang_c,
    erlang_c_probability,
    performance,
)
from callmesh.wfm.staffing import (
    Interval,
    IntervalStaffing,
    StaffingInfeasibleError,
    StaffingTarget,
    agents_needed,
    required_staffing,
    staff,
)

__all__ = [
    "Interval",
    "IntervalStaffing",
    "Performance",
    "QueueLoad",
    "StaffingInfeasibleError",
    "StaffingTarget",
    "agents_needed",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "erlang_c_probability",
    "performance",
    "required_staffing",
    "staff",
]
