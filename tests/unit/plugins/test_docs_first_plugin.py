"""docs/plugins/first-plugin.md, run as written: files written, commands run, output checked.

The tutorial's commands run in a fresh virtual environment made for the test (it sees this
environment's packages, callmesh included, through a .pth file), so installing the
tutorial's package never touches the project's own .venv.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "plugins" / "first-plugin.md"
FENCE = re.compile(r"^```(\w+)(?: file=(\S+))?\n(.*?)^```$", re.M | re.S)


def blocks() -> list[tuple[str, str | None, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(DOC.read_text())]


def test_tutorial_has_files_and_commands() -> None:
    kinds = [(lang, path is not None) for lang, path, _ in blocks()]
    assert ("python", True) in kinds and ("toml", True) in kinds and ("console", False) in kinds


@pytest.mark.slow
def test_first_plugin_tutorial_runs_as_written(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # No pip of its own: the host's pip and setuptools serve it (through the .pth below).
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300
    )
    site_dir = next((venv / "lib").glob("python3*/site-packages"))
    main_site = sysconfig.get_paths()["purelib"]
    (site_dir / "callmesh-host.pth").write_text(f"import site; site.addsitedir({main_site!r})\n")
    bindir = venv / "bin"
    for name, target in (("callmesh", "callmesh.cli"), ("pytest", "pytest"), ("pip", "pip")):
        script = bindir / name
        script.write_text(f'#!/usr/bin/env bash\nexec "{bindir}/python" -m {target} "$@"\n')
        script.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "PYTHONSAFEPATH": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTEST_XDIST_WORKER", None)
    work = tmp_path / "work"
    work.mkdir()
    commands = 0
    for lang, path, body in blocks():
        if path is not None:
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
            continue
        if lang != "console":
            continue
        output = ""
        command = ""
        for line in body.splitlines():
            if line.startswith("$ "):
                command = line[2:]
                run = subprocess.run(
                    command,
                    shell=True,
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                commands += 1
                output = run.stdout + run.stderr
                assert run.returncode == 0, f"`{command}` failed:\n{output[-4000:]}"
            elif line.strip():
                assert line.strip() in output, (
                    f"`{command}` did not print {line!r}:\n{output[-4000:]}"
                )
    assert commands >= 4
