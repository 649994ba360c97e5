"""Pure parts of the callcontrol worker: config loading, recording sample, TTS text,
record packing and the JSON-lines sink."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from callmesh.workers.callcontrol.call import (
    dialer_attributes,
    esl_text,
    pack_record,
    should_record,
    unpack_record,
)
from callmesh.workers.callcontrol.config import CallControlConfigError, load_config
from callmesh.workers.esl.events import Event
from callmesh.workers.interactions import InteractionRecord, JsonLinesSink

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "acme-insurance"


def tenant(tmp_path: Path, mutate: object = None) -> Path:
    docs = []
    for name in ("contactcenter", "queues", "agentteams", "ivrflows"):
        docs += [d for d in yaml.safe_load_all((EXAMPLE / f"{name}.yaml").read_text()) if d]
    if callable(mutate):
        mutate(docs)
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def test_example_tenant_compiles_every_flow_once(tmp_path: Path) -> None:
    config = load_config(tenant(tmp_path))
    assert config.namespace == "acme-insurance"
    assert set(config.flows) == {"acme-main", "acme-claims", "acme-renewals"}
    assert config.numbers["+12125550100"] == "acme-main"
    assert config.extensions["malvarez"] == "2001"
    assert config.queues["sales"].interval == 45 and config.queues["sales"].recording_percent == 100
    assert config.queues["sales"].greeting == "acme/queue-sales-greeting.wav"
    assert config.recording_policy == "perQueue" and config.default_queue == "claims"
    assert config.sip_domain == "acme-insurance.voice.example.net"


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CallControlConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(CallControlConfigError, match="default queue 'nope'"):
        load_config(tenant(tmp_path), default_queue="nope")

    def no_center(docs: list[dict[str, object]]) -> None:
        docs[:] = [d for d in docs if d["kind"] != "ContactCenter"]

    with pytest.raises(CallControlConfigError, match="no ContactCenter"):
        load_config(tenant(tmp_path, no_center))

    def bad_regex(docs: list[dict[str, object]]) -> None:
        flow = next(d for d in docs if d["kind"] == "IVRFlow")
        flow["spec"]["nodes"].append(  # type: ignore[index]
            {"id": "broken", "type": "collect", "collect": {
                "prompt": {"file": "x.wav"}, "attribute": "acct", "regex": "([",
                "next": "welcome"}}
        )  # fmt: skip

    with pytest.raises(CallControlConfigError) as info:
        load_config(tenant(tmp_path, bad_regex))
    assert "regex" in str(info.value)


def test_recording_sample_is_stable_and_near_its_share() -> None:
    assert should_record("all", 0, "x") and not should_record("none", 100, "x")
    assert not should_record("perQueue", 0, "x") and should_record("perQueue", 100, "x")
    ids = [f"call-{i}" for i in range(4000)]
    share = sum(should_record("perQueue", 20, i) for i in ids) / len(ids)
    assert 0.17 < share < 0.23
    assert [should_record("perQueue", 20, i) for i in ids[:50]] == [
        should_record("perQueue", 20, i) for i in ids[:50]
    ]


def test_esl_text_is_one_line() -> None:
    # quoting for speak ("|", quotes, "${") is split_arg's and app_arg's job (test_quoting)
    assert esl_text("Hello\n  {{x}} | world\r\n") == "Hello {{x}} | world"


def test_record_packs_into_one_token_and_back() -> None:
    record = InteractionRecord(call_id="u1", ani="+1 (555) 0100", attributes={"a": "é|=,"})
    packed = pack_record(record)
    assert all(c.isalnum() or c in "-_=" for c in packed)
    assert unpack_record(packed) == record
    assert unpack_record("not base64 !!") is None
    assert unpack_record(pack_record(record)[:-8]) is None


async def test_json_lines_sink_appends_whole_lines(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path / "deep" / "interactions.jsonl")
    for i in range(3):
        await sink.write(InteractionRecord(call_id=f"c{i}", disposition="answered"))
    await sink.close()
    lines = (tmp_path / "deep" / "interactions.jsonl").read_text().splitlines()
    assert [json.loads(line)["call_id"] for line in lines] == ["c0", "c1", "c2"]
    assert [r.call_id for r in sink.read()] == ["c0", "c1", "c2"]
    again = JsonLinesSink(tmp_path / "deep" / "interactions.jsonl")
    await again.write(InteractionRecord(call_id="c3"))
    await again.close()
    assert len(again.read()) == 4


def test_dialer_attributes_from_the_channel_data() -> None:
    channel = Event(
        [
            ("Unique-ID", "u1"),
            ("variable_callmesh_queue", "sales"),
            ("variable_callmesh_attr_tier", "gold"),
            ("variable_callmesh_attr_policy", "P-1"),
            ("variable_callmesh_attr_empty", ""),
            ("variable_callmesh_campaign", "renewals"),
            ("variable_callmesh_attempt", "renewals.c1.1"),
            ("variable_callmesh_contact", "c1"),
            ("variable_callmesh_priority", "3"),
            ("variable_sip_from_user", "x"),
        ]
    )
    assert dialer_attributes(channel) == {
        "tier": "gold",
        "policy": "P-1",
        "dialer.campaign": "renewals",
        "dialer.attempt": "renewals.c1.1",
        "dialer.contact": "c1",
        "dialer.priority": "3",
    }
