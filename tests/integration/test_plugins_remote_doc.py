"""docs/plugins/remote.md: its service runs as its own process and routes VIP contacts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.testkit import make_request

from callmesh.acd.strategy import AgentView, Channel, ContactView

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins" / "remote.md"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[int]:
    code = re.search(r"```python file=acme_vip_service.py\n(.*?)^```", DOC.read_text(), re.M | re.S)
    assert code, "the service block is missing from docs/plugins/remote.md"
    script = tmp_path / "acme_vip_service.py"
    script.write_text(code.group(1))
    proc = subprocess.Popen(
        [sys.executable, str(script), "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONSAFEPATH": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"listening on port (\d+)", line)
        assert match, f"service did not start: {line!r}"
        yield int(match.group(1))
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_documented_service_routes_vips(service: int) -> None:
    manager = PluginManager(
        [{"name": "remote", "config": {"name": "acme-vip", "target": f"127.0.0.1:{service}"}}],
        catalog=PluginCatalog(environ={}, entry_points=[]),
    )
    agents = [
        AgentView("junior", {"seniority": 2}, 5.0, 0, 0.0, "t", 1, 0),
        AgentView("senior", {"seniority": 9}, 50.0, 0, 0.0, "t", 1, 1),
    ]
    vip = ContactView("c1", Channel.VOICE, 0, {"tier": "vip"}, {}, "support", 0.0)
    decision = manager.route(make_request(agents, contact=vip))
    assert decision is not None and decision.agent_ids == ("senior",)
    assert decision.decided_by == "remote:acme-vip:acme-vip"
    plain = ContactView("c2", Channel.VOICE, 0, {}, {}, "support", 0.0)
    other = manager.route(make_request(agents, contact=plain))
    assert other is not None and other.decided_by == "longest-idle-agent"
    assert manager.failures.snapshot() == {}
