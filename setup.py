"""Build hook: with ``CALLMESH_COMPILE=1``, the routing engine and the simulator loop are
compiled with mypyc (it ships with mypy); without it, callmesh is pure Python.

Everything else about the package is declared in pyproject.toml. The compiled modules are
the same source files, type-checked by mypy --strict: the pure and the compiled build run
the same code, and ``bash scripts/compile.sh`` (part of the test command) builds the
compiled one and runs the core's tests on it. docs/performance.md has the figures of both.

A compiled build type-checks the package, so it needs what mypy needs (the runtime
dependencies and the test extra) in the build environment::

    pip install '.[test]'
    CALLMESH_COMPILE=1 pip install --no-build-isolation --no-deps --force-reinstall .
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

# The modules on the per-contact path of the router and the simulator. Not compiled:
# acd/errors.py (exceptions derived from builtins) and acd/strategy.py (its runtime-checkable
# Protocols are the plugin contract).
COMPILED = [
    "callmesh/acd/effects.py",
    "callmesh/acd/engine.py",
    "callmesh/acd/state.py",
    "callmesh/acd/strategies.py",
    "callmesh/sim/draws.py",
    "callmesh/sim/simulator.py",
]

ext_modules = []
if os.environ.get("CALLMESH_COMPILE") == "1":
    try:
        from mypyc.build import mypycify
    except ImportError:
        sys.exit(
            "CALLMESH_COMPILE=1 compiles callmesh's core with mypyc, which is not installed"
            " here: pip install '.[test]' first, then build with --no-build-isolation"
        )
    ext_modules = mypycify(COMPILED, opt_level="3")

setup(ext_modules=ext_modules)
