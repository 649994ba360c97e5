"""Status of every callmesh resource, in one schema, computed in one place (pure).

Each object gets three conditions, as Kubernetes' ``metav1.Condition``:

- ``Ready``: True when the tenant works with the object's current generation: its
  configuration is applied to the children AND the switch StatefulSet and every worker
  Deployment report all their replicas ready and updated (reason ``Available``).
- ``Progressing``: True while the object waits for something outside it: pods that are
  starting or rolling out (``PodsNotReady``, naming each workload and its ready count), or
  a tenant ContactCenter that is missing or degraded; it becomes Ready by itself.
- ``Degraded``: True when the object itself cannot be applied (a reference to an object
  that does not exist, a missing Secret or contact list, an invalid field) or a rollout
  stalled (``RolloutStalled``); the message names the field and the fix.

Live figures in ``status`` (``waiting``, ``serviceLevel``, ``loggedIn``, ``abandonPercent``
...) are written by the workers; the operator's writes are JSON merge patches of only its
own keys, so they never erase the workers' figures.

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
AVAILABLE = "Available"
PODS_NOT_READY = "PodsNotReady"
ROLLOUT_STALLED = "RolloutStalled"
CONTACT_LIST_NOT_FOUND = "ContactListNotFound"
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


@dataclass(frozen=True)
class Workload:
    """How far a StatefulSet or Deployment is from running its desired pods."""

    name: str
    desired: int
    ready: int
    updated: int
    ready_now: bool
    stalled: str | None = None
    """The controller's message when the rollout exceeded its progress deadline."""

    def describe(self) -> str:
        """``acme-router 0/1 ready`` (plus what is rolling out)."""
        text = f"{self.name} {self.ready}/{self.desired} ready"
        if self.ready and self.updated < self.desired:  # old pods run: a rollout
            text += f", {self.updated}/{self.desired} updated"
        return text


def workload(body: Mapping[str, Any]) -> Workload:
    """Readiness of a StatefulSet or Deployment from its spec, generation and status.

    Ready means, as ``kubectl rollout status`` has it: the controller has seen the current
    generation, every desired replica runs the current template and is ready (and, for a
    Deployment, available), and no old replica is left.
    """
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    seen = generation is None or (observed is not None and int(observed) >= int(generation))
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0) if seen else 0
    total = int(status.get("replicas") or 0)
    ok = seen and ready >= desired and updated >= desired and total <= desired
    if body.get("kind") == "Deployment":
        ok = ok and int(status.get("availableReplicas") or 0) >= desired
    stalled = None
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("status") == "False"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            stalled = str(condition.get("message") or "progress deadline exceeded")
    if desired == 0:
        ok = seen
    return Workload(str(meta.get("name")), desired, ready, updated, ok, None if ok else stalled)


def summary(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a workload's state matters for readiness (to skip events that change none)."""
    status = body.get("status") or {}
    return (
        (body.get("metadata") or {}).get("generation"),
        (body.get("spec") or {}).get("replicas"),
        *(
            status.get(key)
            for key in (
                "observedGeneration",
                "replicas",
                "readyReplicas",
                "availableReplicas",
                "updatedReplicas",
            )
        ),
        tuple(
            (c.get("type"), c.get("status"), c.get("reason"))
            for c in status.get("conditions") or []
            if isinstance(c, Mapping)
        ),
    )


def readiness_verdict(workloads: Sequence[Workload]) -> Verdict:
    """The ContactCenter's verdict once its children are applied."""
    stalled = [w for w in workloads if w.stalled]
    if stalled:
        return Verdict(
            False,
            ROLLOUT_STALLED,
            "; ".join(f"{w.describe()}: {w.stalled}" for w in stalled)
            + " — kubectl describe the pods for the cause (image, crash, resources)",
            degraded=True,
        )
    waiting = [w for w in workloads if not w.ready_now]
    if waiting:
        return Verdict(
            False,
            PODS_NOT_READY,
            "children applied; waiting for pods: " + ", ".join(w.describe() for w in waiting),
            progressing=True,
        )
    return Verdict(
        True,
        AVAILABLE,
        "children applied; pods ready: " + ", ".join(w.describe() for w in workloads),
    )


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
