"""Effects are value records in both builds: equality, hashing, repr, replace, fields."""

from __future__ import annotations

import dataclasses

from callmesh.acd import AgentState, AgentStateChanged, ContactEnded, EndReason, Offer
from callmesh.acd.effects import DecisionRecord
from callmesh.acd.strategy import Channel


def test_effects_compare_hash_and_copy_by_value() -> None:
    record = DecisionRecord(1.0, "q", ("ann",), "longest-idle-agent", "idle 3 s, tier 1")
    offer = Offer("c1", "q", Channel.VOICE, ("ann",), 20.0, record)
    same = Offer("c1", "q", Channel.VOICE, ("ann",), 20.0, dataclasses.replace(record))
    assert offer == same and hash(offer) == hash(same) and len({offer, same}) == 1
    assert record.fallback is False and record.discarded == ()  # the defaults
    later = dataclasses.replace(offer, timeout=30.0)
    assert later != offer and later.timeout == 30.0 and offer.timeout == 20.0
    assert [f.name for f in dataclasses.fields(offer)] == [
        "contact_id",
        "queue",
        "channel",
        "agent_ids",
        "timeout",
        "decision",
    ]
    change = AgentStateChanged("ann", AgentState.BUSY, "answered c1", 2.0)
    assert repr(change) == (
        "AgentStateChanged(agent_id='ann', state=<AgentState.BUSY: 'Busy'>,"
        " reason='answered c1', at=2.0)"
    )
    ended = ContactEnded("c1", "q", EndReason.ANSWERED, 2.0, 1.0, agent_id="ann")
    assert (ended.action, ended.trace) == (None, ())
    assert ended != ContactEnded("c1", "q", EndReason.ANSWERED, 2.0, 1.0)
