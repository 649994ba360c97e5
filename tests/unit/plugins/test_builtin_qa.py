"""The keyword/rule QA scorer, rule by rule."""

from __future__ import annotations

from dataclasses import replace

import pytest
from callmesh.plugins.builtin.qa import KeywordQA
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.types import Criterion, Interaction, Scorecard


def score(interaction: Interaction, rule: str, **params: object) -> float:
    return KeywordQA.score(interaction, Criterion("c", "", 1.0, rule, params)).score


@pytest.mark.parametrize(
    ("rule", "params", "expected"),
    [
        ("keywords-any", {"words": ["thank you", "cheers"]}, 1.0),
        ("keywords-any", {"words": ["thank you"], "speaker": "customer"}, 0.0),
        ("keywords-any", {"words": ["THANK   you"], "speaker": "agent"}, 1.0),
        ("keywords-any", {"words": ["invoic"]}, 0.0),  # word boundaries: no partial words
        ("keywords-all", {"words": ["invoice", "refund", "wrong", "manager"]}, 0.75),
        ("keywords-none", {"words": ["stupid"]}, 1.0),
        ("keywords-none", {"words": ["wrong"], "speaker": "customer"}, 0.0),
        ("max-hold-seconds", {"seconds": 30}, 0.0),
        ("max-hold-seconds", {"seconds": 35}, 1.0),
        ("max-wait-seconds", {"seconds": 20}, 0.0),
        ("max-talk-seconds", {"seconds": 300}, 1.0),
        ("min-talk-seconds", {"seconds": 300}, 0.0),
        ("attribute-equals", {"key": "language", "value": "en"}, 1.0),
        ("attribute-equals", {"key": "language", "value": "fr"}, 0.0),
    ],
)
def test_rules(
    callmesh_interaction: Interaction, rule: str, params: dict[str, object], expected: float
) -> None:
    interaction = replace(
        callmesh_interaction,
        attributes={"language": "en"},
        transcript=callmesh_interaction.transcript + "\ncustomer: a refund please",
    )
    assert score(interaction, rule, **params) == expected


@pytest.mark.parametrize(
    ("rule", "params", "field"),
    [
        ("keywords-any", {}, "params.words: Field required"),
        ("keywords-any", {"words": ["x"], "speaker": "bot"}, "params.speaker: "),
        ("max-hold-seconds", {"seconds": -1}, "params.seconds: "),
        ("attribute-equals", {"key": "k", "value": "v", "extra": 1}, "params.extra: "),
    ],
)
def test_bad_params_name_the_criterion_and_param(
    callmesh_interaction: Interaction, rule: str, params: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match="criterion 'c'") as err:
        score(callmesh_interaction, rule, **params)
    assert field in str(err.value)


async def test_a_bad_scorecard_is_counted_and_leaves_criteria_unscored(
    callmesh_interaction: Interaction,
) -> None:
    manager = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    card = Scorecard("s", (Criterion("hold", "", 1.0, "max-hold-seconds", {"secs": 5}),))
    result = await manager.score_interaction(callmesh_interaction, card)
    assert result.unscored == ("hold",) and not result.passed and result.score == 0.0
    assert manager.failures.count("keyword-qa", "callmesh_qa_score", "raised") == 1
