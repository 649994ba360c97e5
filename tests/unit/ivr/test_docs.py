"""docs/ivr.md: the worked example's YAML is a valid IVRFlow and its Python runs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from callmesh.api import IVRFlow

DOC = Path(__file__).resolve().parents[3] / "docs" / "ivr.md"
FENCE = re.compile(r"^```(?P<lang>yaml|python)\n(?P<code>.*?)^```$", re.M | re.S)


def _blocks(lang: str) -> list[str]:
    return [m.group("code") for m in FENCE.finditer(DOC.read_text()) if m.group("lang") == lang]


def test_worked_example_flow_is_a_valid_ivrflow() -> None:
    (flow_yaml,) = _blocks("yaml")
    flow = IVRFlow.model_validate(yaml.safe_load(flow_yaml))
    assert flow.spec.entry == "hours"


def test_worked_example_runs() -> None:
    (flow_yaml,) = _blocks("yaml")
    (code,) = _blocks("python")
    namespace: dict[str, object] = {"__name__": "ivr_doc", "FLOW_YAML": flow_yaml}
    exec(compile(code, "docs/ivr.md (worked example)", "exec"), namespace)
    assert namespace["outcome"] is not None  # the last case ran to its end


def test_every_action_and_event_is_documented() -> None:
    import callmesh.ivr.actions as actions
    import callmesh.ivr.events as events

    text = DOC.read_text()
    names = [
        n
        for n in actions.__all__
        if n not in {"Action", "ErrorCode", "NoticeCode", "PromptRef", "SkillNeed", "OutcomeKind"}
    ]
    names += [n for n in events.__all__ if n not in {"Event", "CallInfo"}]
    missing = [n for n in names if f"`{n}(" not in text]
    assert missing == [], f"docs/ivr.md lacks {missing} in its tables"
