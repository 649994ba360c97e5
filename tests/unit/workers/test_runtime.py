"""The workers' event loop choice (``--event-loop`` / CALLMESH_EVENT_LOOP)."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import pytest
import uvloop
from callmesh.workers.runtime import loop_factory, run


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_auto_and_uvloop_run_on_uvloop() -> None:
    assert run(_loop_type(), loop_factory("auto")) is uvloop.Loop
    assert run(_loop_type(), loop_factory("uvloop")) is uvloop.Loop


def test_asyncio_runs_on_the_standard_loop() -> None:
    loop_type = run(_loop_type(), loop_factory("asyncio"))
    assert loop_type is not uvloop.Loop and loop_type.__module__.startswith("asyncio")


def test_an_unknown_name_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="'libev' is not one of auto, uvloop, asyncio"):
        loop_factory("libev")


def test_without_uvloop_auto_falls_back_and_uvloop_says_how_to_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    assert loop_factory("auto") is asyncio.new_event_loop
    with pytest.raises(ValueError, match=r"uvloop is not installed.*--event-loop asyncio"):
        loop_factory("uvloop")
