"""End-to-end tests run on the loop the workers run on in production (uvloop, see
``callmesh.workers.runtime``); the integration tests keep asyncio's own loop, so both are
exercised."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"uvloop": uvloop.new_event_loop}
