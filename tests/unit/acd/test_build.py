"""The build under test is the one the test command means to test.

scripts/compile.sh runs the core's tests a second time on the mypyc build and says so with
CALLMESH_EXPECT_BUILD; a plain run tests the pure-Python modules.
"""

from __future__ import annotations

import os
from importlib.machinery import EXTENSION_SUFFIXES

import callmesh
from callmesh.acd import engine, state, strategies
from callmesh.sim import simulator


def test_the_core_runs_as_the_test_command_built_it() -> None:
    expected = os.environ.get("CALLMESH_EXPECT_BUILD", "pure Python")
    assert callmesh.core_build() == expected
    suffixes = (".py",) if expected == "pure Python" else tuple(EXTENSION_SUFFIXES)
    for module in (engine, state, strategies, simulator):
        assert str(module.__file__).endswith(suffixes), module.__file__
