#!/usr/bin/env bash
# Generate the Python modules for every proto/callmesh/v1/*.proto, beside the .proto files:
# *_pb2.py and *_pb2_grpc.py (grpcio-tools) and *_pb2.pyi / *_pb2_grpc.pyi (mypy-protobuf).
# The generators are pinned (below) and installed into .venv/protogen-<pins>/ on first use,
# so every machine writes byte-identical files; tests/contract/test_protos.py regenerates
# into a temporary directory and fails on any difference from the committed files.
# Usage: bash scripts/protogen.sh [OUT_DIR]     (default: proto, i.e. beside the sources)
set -euo pipefail
export PYTHONSAFEPATH=1
cd "$(dirname "$0")/.."
GRPCIO_TOOLS=1.85.1
MYPY_PROTOBUF=5.1.0
out="${1:-proto}"
py="${PYTHON:-.venv/bin/python}"
tools="$PWD/.venv/protogen-$GRPCIO_TOOLS-$MYPY_PROTOBUF"
if [ ! -f "$tools/.complete" ]; then
  echo "== installing pinned generators into $tools" >&2
  rm -rf "$tools"
  "$py" -m pip install -q --disable-pip-version-check --target "$tools" \
    "grpcio-tools==$GRPCIO_TOOLS" "mypy-protobuf==$MYPY_PROTOBUF"
  touch "$tools/.complete"
fi
mkdir -p "$out"
shopt -s nullglob
sources=(proto/callmesh/v1/*.proto)
[ "${#sources[@]}" -gt 0 ] || { echo "no proto/callmesh/v1/*.proto to generate" >&2; exit 1; }
# protoc-gen-mypy / protoc-gen-mypy_grpc must be on PATH and run with the pinned packages.
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
for plugin in mypy mypy_grpc; do
  module=$([ "$plugin" = mypy ] && echo main || echo grpc)
  printf '#!/usr/bin/env bash\nPYTHONPATH=%q exec %q -c "from mypy_protobuf.main import %s; %s()"\n' \
    "$tools" "$PWD/${py#./}" "$module" "$module" > "$bin/protoc-gen-$plugin"
  chmod +x "$bin/protoc-gen-$plugin"
done
PATH="$bin:$PATH" PYTHONPATH="$tools" "$py" -m grpc_tools.protoc -I proto \
  --python_out="$out" --grpc_python_out="$out" --mypy_out="$out" --mypy_grpc_out="$out" \
  "${sources[@]}"
echo "generated ${#sources[@]} proto file(s) into $out/callmesh/v1" >&2
