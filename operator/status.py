"""Status of every callmesh resource, in one schema, computed in one place (pure).

Each object gets three conditions, as Kubernetes' ``metav1.Condition``:

- ``Ready``: True when the object's configuration is applied to the tenant's children at
  its current generation.
- ``Progressing``: True while the object waits for something outside it (its tenant's
  ContactCenter is missing or degraded) and will be applied once that is fixed.
- ``Degraded``: True when the object itself cannot be applied (a reference to an object
  that does not exist, a missing Secret, an invalid field); the message names the field
  and the fix.

``lastTransitionTime`` moves only when a condition's status changes; a status that would
not change is not written at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from callmesh.api.problems import Problem

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
CONDITION_TYPES = (READY, PROGRESSING, DEGRADED)

#: Reasons used by the reconciler.
APPLIED = "Applied"
WAITING = "WaitingForContactCenter"
NO_CENTER = "ContactCenterNotFound"
INVALID = "InvalidSpec"
SECRET_NOT_FOUND = "SecretNotFound"
SECRET_KEY_NOT_FOUND = "SecretKeyNotFound"
APPLY_FAILED = "ApplyFailed"
DEPENDENCY_DEGRADED = "DependencyDegraded"


@dataclass(frozen=True)
class Verdict:
    """What the reconciler concluded about one object."""

    ready: bool
    reason: str
    message: str
    degraded: bool = False
    progressing: bool = False

    @property
    def warning(self) -> bool:
        """True when the object needs a person's attention."""
        return self.degraded


def missing_reference(problem: Problem) -> tuple[str, str] | None:
    """(kind, name) of the object a dangling-reference problem points at, else None."""
    return problem.target


def reason_for(problem: Problem) -> str:
    """The condition reason of a validation problem: its code, e.g. ``TeamNotFound``."""
    return problem.code or INVALID


def describe(problem: Problem) -> str:
    """``spec.field: what is wrong — how to fix it``."""
    return f"{problem.path}: {problem.message}" if problem.path else problem.message


def verdict_for_problems(problems: Sequence[Problem]) -> Verdict:
    """Degraded, with the first problem's reason and every problem in the message."""
    first = problems[0]
    shown = [describe(p) for p in problems[:5]]
    if len(problems) > 5:
        shown.append(f"... and {len(problems) - 5} more (run callmesh validate)")
    return Verdict(False, reason_for(first), "; ".join(shown), degraded=True)


def _timestamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(
    verdict: Verdict,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Ready, Progressing and Degraded for ``verdict``, keeping unchanged transition times."""
    before = {c.get("type"): c for c in previous if isinstance(c, Mapping)}
    wanted = {
        READY: verdict.ready,
        PROGRESSING: verdict.progressing,
        DEGRADED: verdict.degraded,
    }
    out = []
    for kind in CONDITION_TYPES:
        status = "True" if wanted[kind] else "False"
        old = before.get(kind)
        since = (
            old["lastTransitionTime"]
            if old and old.get("status") == status and old.get("lastTransitionTime")
            else _timestamp(now)
        )
        condition: dict[str, Any] = {
            "type": kind,
            "status": status,
            "reason": verdict.reason,
            "message": verdict.message,
            "lastTransitionTime": since,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        out.append(condition)
    return out


def status_patch(
    body: Mapping[str, Any],
    verdict: Verdict,
    now: dt.datetime,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The ``status`` to write for ``body``, or None when it already says the same."""
    generation = body.get("metadata", {}).get("generation")
    current = body.get("status") or {}
    new: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": conditions(verdict, generation, current.get("conditions") or [], now),
        **(extra or {}),
    }
    if generation is None:
        del new["observedGeneration"]
    if all(current.get(key) == value for key, value in new.items()):
        return None
    return new


def transitions(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str | None, str]]:
    """(type, old status, new status) of each condition whose status or reason changed."""
    before = {
        c.get("type"): (c.get("status"), c.get("reason"))
        for c in previous
        if isinstance(c, Mapping)
    }
    out = []
    for condition in current:
        kind, status = condition["type"], condition["status"]
        old = before.get(kind)
        if old is None or old != (status, condition["reason"]):
            out.append((kind, old[0] if old else None, status))
    return out
