#!/usr/bin/env bash
# Build callmesh with its core compiled by mypyc (see setup.py) into .build/compiled, from
# the working tree as it is; with --test, also run the core's tests on that build.
# Use it: PYTHONPATH=.build/compiled .venv/bin/python bench/acd_routing.py
# Usage: bash scripts/compile.sh [--test [extra pytest args]]   (after scripts/setup.sh test)
set -euo pipefail
export PYTHONSAFEPATH=1
cd "$(dirname "$0")/.."
root="$PWD"
py="$root/.venv/bin/python"
out="$root/.build/compiled"
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
# A copy of the tree, so that the build's own build/ folder never mixes with the editable
# install's.
tar --exclude=./.venv --exclude=./build --exclude=./.build --exclude=./.git --exclude=./out \
  --exclude=.hypothesis --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache \
  --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -xf - -C "$src"
echo "== mypyc: compiling the core (CALLMESH_COMPILE=1)"
rm -rf "$out"
# The production build's command (docs/design.md), into a folder of its own.
(cd "$src" && CALLMESH_COMPILE=1 "$py" -m pip install -q --no-build-isolation --no-deps \
  --target "$out" .)
PYTHONPATH="$out" "$py" -c '
import callmesh
build = callmesh.core_build()
assert build == "compiled (mypyc)", f"{callmesh.__file__}: the core was not compiled ({build})"
print("callmesh core:", build, "in", callmesh.__file__)
'
if [ "${1:-}" = "--test" ]; then
  shift
  echo "== pytest on the compiled core"
  # The engine, the strategies, the simulator, the router worker around the engine (its CLI
  # test's worker process inherits PYTHONPATH), the end-to-end call path and the simulation
  # of examples/: every test that runs the compiled modules. (The layout test reads the
  # source tree: not here.)
  CALLMESH_EXPECT_BUILD="compiled (mypyc)" PYTHONPATH="$out" "$root/.venv/bin/pytest" -n 2 -q \
    tests/unit/acd tests/unit/sim tests/unit/plugins tests/unit/workers tests/property \
    tests/theory tests/integration/test_router_*.py tests/e2e "$@"
fi
