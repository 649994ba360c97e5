"""Helpers shared by the IVR unit tests: flows from plain dicts, a fixed clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from callmesh.api import IVRFlow
from callmesh.api.contactcenter import Schedule
from callmesh.ivr import CompiledFlow, compile_flow

#: Monday 2026-11-23 10:00 UTC (11:00 in Berlin), inside ordinary business hours.
MONDAY_10_UTC = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC).timestamp()

BUSINESS = {
    "name": "business",
    "timeZone": "Europe/Berlin",
    "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "open": "08:00", "close": "18:00"}],
    "holidays": [
        {"date": "2026-12-25", "name": "Christmas"},
        {"date": "2026-12-24", "name": "Christmas Eve", "open": "08:00", "close": "12:00"},
    ],
}

FlowBuilder = Callable[..., CompiledFlow]


def make_flow(
    nodes: Sequence[dict[str, Any]],
    *,
    entry: str | None = None,
    on_error: str | None = None,
    schedules: Sequence[dict[str, Any]] = (),
    time_zone: str = "UTC",
    **spec: Any,
) -> CompiledFlow:
    """Compile a flow written as manifest dicts (camelCase, as in YAML)."""
    body: dict[str, Any] = {"entry": entry or nodes[0]["id"], "nodes": list(nodes), **spec}
    if on_error is not None:
        body["onError"] = on_error
    flow = IVRFlow.model_validate({"metadata": {"name": "test", "namespace": "t"}, "spec": body})
    return compile_flow(flow, [Schedule.model_validate(s) for s in schedules], time_zone=time_zone)


@pytest.fixture
def build() -> FlowBuilder:
    """The :func:`make_flow` helper."""
    return make_flow


def node(node_id: str, node_type: str, /, **settings: Any) -> dict[str, Any]:
    """One manifest node: ``node("m", "menu", prompt=..., options=...)``."""
    return {"id": node_id, "type": node_type, node_type: settings}


@pytest.fixture
def n() -> Callable[..., dict[str, Any]]:
    """The :func:`node` helper."""
    return node


@pytest.fixture
def business() -> dict[str, Any]:
    """Weekdays 08:00-18:00 in Berlin, closed on Christmas Day, mornings on Christmas Eve."""
    return BUSINESS


@pytest.fixture
def monday() -> float:
    """Monday 2026-11-23 10:00 UTC (11:00 in Berlin), inside business hours."""
    return MONDAY_10_UTC
