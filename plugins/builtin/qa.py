"""The built-in keyword/rule QA scorer.

It answers the scorecard criteria whose ``rule`` it knows and skips the rest (a vendor's
scorer may answer those):

=====================  ==============================================  =======================
rule                   params                                          score
=====================  ==============================================  =======================
``keywords-any``       ``words`` (list), ``speaker`` (agent/customer)  1 if any phrase is said
``keywords-all``       ``words``, ``speaker``                          share of phrases said
``keywords-none``      ``words``, ``speaker``                          1 if none is said
``max-hold-seconds``   ``seconds``                                     1 if hold <= seconds
``max-wait-seconds``   ``seconds``                                     1 if wait <= seconds
``max-talk-seconds``   ``seconds``                                     1 if talk <= seconds
``min-talk-seconds``   ``seconds``                                     1 if talk >= seconds
``attribute-equals``   ``key``, ``value``                              1 if attribute matches
=====================  ==============================================  =======================

Phrases match case-insensitively on word boundaries, in the transcript lines of the given
speaker (``"agent: ..."`` / ``"customer: ..."``), or in all the text when no speaker is given.
Bad params raise an error naming the criterion and the param.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

from callmesh.plugins.hookspecs import hookimpl
from callmesh.plugins.types import Criterion, CriterionScore, Interaction, Scorecard
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["KEYWORD_RULES", "KeywordQA"]


class _Words(BaseModel):
    model_config = ConfigDict(extra="forbid")
    words: list[str] = Field(min_length=1)
    speaker: Literal["agent", "customer"] | None = None


class _Seconds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0)


class _Attribute(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1)
    value: str


def _text(interaction: Interaction, speaker: str | None) -> str:
    if speaker is None:
        return interaction.transcript
    prefix = speaker + ":"
    return "\n".join(
        line.split(":", 1)[1]
        for line in interaction.transcript.splitlines()
        if line.strip().lower().startswith(prefix)
    )


def _said(text: str, phrase: str) -> bool:
    pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, phrase.split())) + r"(?!\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None


def _keywords(mode: str) -> Callable[[Interaction, dict[str, object]], tuple[float, str]]:
    def check(interaction: Interaction, raw: dict[str, object]) -> tuple[float, str]:
        params = _Words.model_validate(raw)
        text = _text(interaction, params.speaker)
        said = [w for w in params.words if _said(text, w)]
        if mode == "any":
            return (1.0 if said else 0.0), (f"said {said[0]!r}" if said else "none said")
        if mode == "all":
            return len(said) / len(params.words), f"said {len(said)} of {len(params.words)}"
        return (0.0 if said else 1.0), (f"said {', '.join(map(repr, said))}" if said else "none")

    return check


def _limit(
    field: str, upper: bool
) -> Callable[[Interaction, dict[str, object]], tuple[float, str]]:
    def check(interaction: Interaction, raw: dict[str, object]) -> tuple[float, str]:
        limit = _Seconds.model_validate(raw).seconds
        value: float = getattr(interaction, field)
        ok = value <= limit if upper else value >= limit
        return (1.0 if ok else 0.0), f"{field.replace('_', ' ')} {value:g} (limit {limit:g})"

    return check


def _attribute(interaction: Interaction, raw: dict[str, object]) -> tuple[float, str]:
    params = _Attribute.model_validate(raw)
    actual = interaction.attributes.get(params.key)
    return (1.0 if actual == params.value else 0.0), f"{params.key}={actual!r}"


KEYWORD_RULES: dict[str, Callable[[Interaction, dict[str, object]], tuple[float, str]]] = {
    "keywords-any": _keywords("any"),
    "keywords-all": _keywords("all"),
    "keywords-none": _keywords("none"),
    "max-hold-seconds": _limit("hold_seconds", upper=True),
    "max-wait-seconds": _limit("wait_seconds", upper=True),
    "max-talk-seconds": _limit("talk_seconds", upper=True),
    "min-talk-seconds": _limit("talk_seconds", upper=False),
    "attribute-equals": _attribute,
}
"""The rules this scorer understands, by name."""


class KeywordQA:
    """Scores transcript keywords and timing/attribute rules of a scorecard."""

    @hookimpl
    async def callmesh_qa_score(
        self, interaction: Interaction, scorecard: Scorecard
    ) -> Sequence[CriterionScore] | None:
        """Score every criterion whose rule is in :data:`KEYWORD_RULES`."""
        scores = [
            self.score(interaction, criterion)
            for criterion in scorecard.criteria
            if criterion.rule in KEYWORD_RULES
        ]
        return scores or None

    @staticmethod
    def score(interaction: Interaction, criterion: Criterion) -> CriterionScore:
        """Score one criterion.

        Raises:
            ValueError: the criterion's params do not fit its rule (names both).
        """
        try:
            score, evidence = KEYWORD_RULES[criterion.rule](interaction, dict(criterion.params))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(
                f"scorecard criterion {criterion.id!r} (rule {criterion.rule}): "
                f"params.{where}: {first['msg']}"
            ) from None
        return CriterionScore(criterion.id, score, evidence)
