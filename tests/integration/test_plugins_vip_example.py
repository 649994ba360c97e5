"""The example third-party package, end to end: installed with pip, found by its entry point,
configured from a ContactCenter manifest, used in routing, passing the conformance suite."""

from __future__ import annotations

import fcntl
import importlib
import importlib.metadata
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.catalog import _installed as catalog_installed
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.testkit import make_request
from callmesh.plugins.types import CallerQuery

from callmesh.acd.strategy import AgentView, Channel, ContactView
from callmesh.api.contactcenter import ContactCenter

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "examples" / "plugins" / "callmesh-vip-routing"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PYTHONSAFEPATH": "1"}


def _installed() -> bool:
    importlib.invalidate_caches()
    try:
        importlib.metadata.distribution("callmesh-vip-routing")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="session")
def vip_installed() -> None:
    """pip-install the example into this environment once (workers take turns via a lock)."""
    lock_path = Path(sysconfig.get_paths()["purelib"]) / ".callmesh-vip-routing.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--no-deps",
                    "--no-build-isolation",
                    "-e",
                    str(PACKAGE),
                ],
                capture_output=True,
                text=True,
                env=ENV,
                timeout=300,
            )
            assert run.returncode == 0, run.stderr
        fcntl.flock(lock, fcntl.LOCK_UN)
    # The editable install adds a .pth file; make this running interpreter read it too.
    site.addsitedir(sysconfig.get_paths()["purelib"])
    assert _installed()
    # A catalog reads the installed entry points once per process: an earlier test may have
    # read them before this install.
    catalog_installed.cache_clear()


def test_found_by_callmesh_plugins_list(vip_installed: None) -> None:
    run = subprocess.run(
        [str(BIN / "callmesh"), "plugins", "list"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    row = next(line for line in run.stdout.splitlines() if "vip-routing" in line)
    for cell in ("1.0.0", "callmesh_route_contact", "callmesh-vip-routing"):
        assert cell in row
    info = PluginCatalog(environ={}).info("vip-routing")
    assert not info.builtin and info.source == "callmesh-vip-routing"


def test_manifest_checks_with_callmesh_plugins_check(vip_installed: None) -> None:
    run = subprocess.run(
        [str(BIN / "callmesh"), "plugins", "check", str(PACKAGE / "contactcenter.yaml")],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "plugins ok (keyword-qa, routing, vip-routing, memory-crm)" in run.stdout


async def test_configured_from_the_manifest_and_used_in_routing(vip_installed: None) -> None:
    doc = yaml.safe_load((PACKAGE / "contactcenter.yaml").read_text())
    center = ContactCenter.model_validate(doc)
    manager = PluginManager(center.spec.plugins, catalog=PluginCatalog(environ={}))
    try:
        # The CRM's screen pop marks the caller VIP; routing reads that attribute.
        record = await manager.lookup_caller(CallerQuery("c1", "voice", "+15555550100"))
        assert record.found and record.attributes["tier"] == "vip"
        agents = [
            AgentView("junior", {"seniority": 3}, 5.0, 0, 0.0, "t", 1, 0),
            AgentView("senior-b", {"seniority": 8}, 40.0, 0, 0.0, "t", 1, 1),
            AgentView("senior-a", {"seniority": 9}, 20.0, 0, 0.0, "t", 1, 2),
        ]
        vip = ContactView("c1", Channel.VOICE, 0, dict(record.attributes), {}, "support", 0.0)
        decision = manager.route(make_request(agents, contact=vip))
        assert decision is not None and decision.agent_ids == ("senior-a",)
        assert decision.decided_by == "vip-routing"
        plain = ContactView("c2", Channel.VOICE, 0, {}, {}, "support", 0.0)
        other = manager.route(make_request(agents, contact=plain))
        assert other is not None and other.agent_ids == ("junior",)
        assert manager.failures.snapshot() == {}
    finally:
        await manager.aclose()


def test_passes_the_conformance_suite(vip_installed: None) -> None:
    run = subprocess.run(
        [str(BIN / "pytest"), "-q", "-p", "no:randomly"],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "TestConformance" not in run.stdout  # nothing failed by name
    assert " passed" in run.stdout.splitlines()[-1]


def test_example_tenants_plugin_configs_are_valid() -> None:
    """Every ContactCenter under examples/ configures its plugins correctly."""
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "ContactCenter":
                center = ContactCenter.model_validate(doc)
                manager = PluginManager(center.spec.plugins, catalog=PluginCatalog(environ={}))
                assert manager.plugins, path
