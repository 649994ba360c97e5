"""The build under test is the one the test command means to test.

scripts/compile.sh runs the core's tests a second time on the mypyc build and says so with
CALLMESH_EXPECT_BUILD; a plain run tests the pure-Python modules.
"""

from __future__ import annotations

import os

import callmesh
from callmesh.acd import engine, state, strategies
from callmesh.sim import simulator


def test_the_core_runs_as_the_test_command_built_it() -> None:
    expected = os.environ.get("CALLMESH_EXPECT_BUILD", "pure Python")
    assert callmesh.core_build() == expected
    suffix = ".py" if expected == "pure Python" else ".so"
    for module in (engine, state, strategies, simulator):
        assert str(module.__file__).endswith(suffix), module.__file__
