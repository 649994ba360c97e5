#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite: lint, format, types, tests.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
# The repo has a top-level operator/ folder (installed as callmesh.operator); never let the
# working directory shadow the standard library's operator module.
export PYTHONSAFEPATH=1
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff check";          ruff check .
echo "== ruff format --check"; ruff format --check .
echo "== mypy";                root="$PWD"; (cd / && mypy --config-file "$root/pyproject.toml" --cache-dir "$root/.mypy_cache" -p callmesh)
echo "== pytest";              pytest -n 2 "$@"
# The same core compiled by mypyc (CALLMESH_COMPILE=1): built, and its tests run on it.
bash scripts/compile.sh --test
