"""The committed generated modules are exactly what the pinned generators write."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
V1 = ROOT / "proto" / "callmesh" / "v1"


@pytest.mark.slow
def test_generated_modules_match_the_protos(tmp_path: Path) -> None:
    run = subprocess.run(
        ["bash", "scripts/protogen.sh", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    generated = sorted(
        p.relative_to(tmp_path / "callmesh" / "v1")
        for p in (tmp_path / "callmesh" / "v1").iterdir()
    )
    assert generated, "protogen wrote nothing"
    for proto in V1.glob("*.proto"):
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"):
            assert Path(proto.stem + suffix) in generated, f"{proto.stem}{suffix} not generated"
    stale = []
    for rel in generated:
        committed = V1 / rel
        fresh = (tmp_path / "callmesh" / "v1" / rel).read_text()
        if not committed.exists() or committed.read_text() != fresh:
            stale.append(str(rel))
    assert not stale, f"regenerate with `bash scripts/protogen.sh` and commit: {stale}"


def test_every_rpc_and_field_is_commented() -> None:
    for proto in V1.glob("*.proto"):
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            text = line.strip()
            is_field = (
                text.endswith(";") and "=" in text and not text.startswith(("option", "syntax"))
            )
            if (
                text.startswith("rpc ")
                or is_field
                or text.startswith(("message ", "enum ", "service "))
            ):
                previous = lines[i - 1].strip()
                assert previous.startswith("//"), f"{proto.name}:{i + 1} lacks a comment: {text}"
            if text.startswith("enum "):
                first = lines[i + 2].strip()
                assert first.endswith("_UNSPECIFIED = 0;"), f"{proto.name}:{i + 3} zero value"
