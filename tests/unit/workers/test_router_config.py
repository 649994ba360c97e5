"""The router reads the operator's rendered tenant.yaml into engine configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from callmesh.operator.render import ROUTER, build_worker_configmap
from callmesh.workers.router.config import RouterConfigError, load_config

from callmesh.acd import Channel, OverflowAction
from callmesh.api.validate import load_tenants

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def rendered(tmp_path: Path, tenant: str) -> Path:
    (model,) = load_tenants([EXAMPLES / tenant]).values()
    path = tmp_path / "tenant.yaml"
    path.write_text(build_worker_configmap(model, ROUTER)["data"]["tenant.yaml"])
    return path


def test_rendered_configmap_maps_queues_teams_and_plugins(tmp_path: Path) -> None:
    config = load_config(rendered(tmp_path, "globex-telecom"))
    (model,) = load_tenants([EXAMPLES / "globex-telecom"]).values()
    assert config.namespace == "globex-telecom"
    assert [q.name for q in config.queues] == sorted(model.queues)
    assert [t.name for t in config.teams] == sorted(model.teams)
    assert model.center is not None and len(config.plugins) == len(model.center.spec.plugins)
    voice = next(q for q in config.queues if q.name == "voice-support")
    assert voice.channel is Channel.VOICE and voice.skills == {"general-support": 3}
    assert voice.max_wait == 900 and voice.overflow is not None
    assert voice.overflow.action is OverflowAction.CALLBACK
    chat = next(q for q in config.queues if q.name == "chat-support")
    assert chat.channel is Channel.CHAT and chat.overflow is None  # hangup: timed out
    assert config.service_levels["voice-support"].seconds == 30
    assert config.service_levels["voice-support"].target == pytest.approx(0.8)
    team = next(t for t in config.teams if t.name == "tech-support")
    assert team.agents[0].skills["internet"] == 9
    assert team.agents[0].capacity[Channel.VOICE] == 1
    assert len(config.digest) == 64
    assert load_config(rendered(tmp_path, "globex-telecom")).digest == config.digest


def test_missing_file_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(RouterConfigError, match="--config"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_object_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text(
        "apiVersion: callmesh.io/v1alpha1\nkind: Queue\nmetadata: {name: q, namespace: t}\n"
        "spec:\n  tiers: [{level: 1, teams: [desk]}]\n  offerTimeoutSeconds: 1\n"
    )
    with pytest.raises(RouterConfigError) as err:
        load_config(path)
    assert "tenant.yaml:" in str(err.value) and "offerTimeoutSeconds" in str(err.value)


def test_queue_naming_a_missing_team_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text(
        "apiVersion: callmesh.io/v1alpha1\nkind: Queue\nmetadata: {name: q, namespace: t}\n"
        "spec:\n  tiers: [{level: 1, teams: [desk]}]\n"
    )
    with pytest.raises(RouterConfigError, match="desk"):
        load_config(path)
