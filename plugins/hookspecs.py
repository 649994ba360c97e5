"""The callmesh hook contract: every hook a plugin may implement, grouped by family.

A plugin implements hooks with :data:`hookimpl` (``from callmesh.plugins import hookimpl``)
on a module or a class registered under the ``callmesh`` entry-point group. The manager
(:mod:`callmesh.plugins.manager`) calls each implementation separately, under the hook's
time budget (stated in each docstring and in :data:`HOOKS`): a plugin that raises, overruns
its budget or answers the wrong type is logged with its name, counted in the
``callmesh.plugin.failures`` metric, and skipped; the built-in fallback then decides, so a
vendor's bug never costs a call.

Shapes are fixed: a hook marked *async* must be implemented with ``async def``, every
other one with a plain ``def``. Arguments and results are the dataclasses of
:mod:`callmesh.plugins.types` (frozen) and the types of :mod:`callmesh.acd.strategy`: the
routing request, views and outcome are named tuples (immutable, and built by the engine in
one call each, several per decision; derive a changed copy with ``_replace``), their
``skills`` and ``attributes`` mappings are read-only proxies, and the decision a strategy
returns is a slotted dataclass, read-only by convention (build a new one with
``dataclasses.replace``). The engine checks every decision against its own records, never a
view's fields. The contract's version is :data:`callmesh.plugins.types.CONTRACT_VERSION`.

``docs/plugins/reference.md`` is generated from this file (``callmesh plugins reference``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pluggy
from callmesh.plugins.types import (
    CallerQuery,
    CallerRecord,
    ContactEvent,
    CriterionScore,
    Interaction,
    PacingDecision,
    PacingRequest,
    Scorecard,
)

from callmesh.acd.strategy import RoutingDecision, RoutingOutcome, RoutingRequest, RoutingStrategy

PROJECT = "callmesh"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True, slots=True)
class HookInfo:
    """How the manager calls one hook.

    Attributes:
        name: the hook's name.
        family: routing, crm, qa, notifications or pacing.
        asynchronous: implementations are ``async def`` and are awaited.
        firstresult: the first non-None answer wins and later plugins are not called.
        budget: seconds one implementation may take before it is abandoned.
        since: the contract version that added the hook.
    """

    name: str
    family: str
    asynchronous: bool
    firstresult: bool
    budget: float
    since: str


HOOKS: dict[str, HookInfo] = {}
"""Every hook of the contract by name, in declaration order."""

_F = TypeVar("_F", bound=Callable[..., object])


def _hook(
    family: str, *, budget: float, asynchronous: bool = False, firstresult: bool = False
) -> Callable[[_F], _F]:
    def mark(fn: _F) -> _F:
        name = fn.__name__
        HOOKS[name] = HookInfo(name, family, asynchronous, firstresult, budget, "1.0")
        return hookspec(firstresult=firstresult)(fn)

    return mark


# =============================================================================================
# Routing: which agent gets a contact
# =============================================================================================
@_hook("routing", budget=0.050)
def callmesh_routing_strategies(register: Callable[[RoutingStrategy], None]) -> None:
    """Register routing strategies that queues can name in ``spec.routing.strategy``.

    Called once when a tenant's plugins are set up. Call ``register(strategy)`` for each
    strategy object; ``strategy.name`` is the name a Queue uses and must be unique across
    the tenant's plugins (the manager refuses a duplicate, naming both plugins). The
    built-in plugin registers the mod_callcenter strategies and ``skills-best-match``.

    Args:
        register: call it with a :class:`~callmesh.acd.strategy.RoutingStrategy`.

    Returns:
        None. Every plugin is called.

    Budget: 50 ms for the registration call. Each later ``strategy.choose(request)`` call
    runs under the ``callmesh_route_contact`` budget (20 ms) and the same isolation: a
    decision naming an agent that is not among ``request.candidates`` is rejected and the
    built-in fallback decides. Added in contract 1.0.
    """


@_hook("routing", budget=0.020, firstresult=True)
def callmesh_route_contact(request: RoutingRequest) -> RoutingDecision | None:
    """Override the queue's strategy for some contacts (e.g. VIP customers to senior agents).

    Called for every routing decision before the queue's named strategy. Answer None for
    contacts you have no opinion on; they go to the queue's strategy.

    Args:
        request: the contact, its queue, the queue's strategy name and params, the
            candidate agents (all Available with capacity and the required skills) and the
            engine's clock and seeded random generator.

    Returns:
        A :class:`~callmesh.acd.strategy.RoutingDecision` whose ``agent_ids`` are all among
        ``request.candidates``, or None. The first non-None answer wins (plugins registered
        later are asked first). An invalid answer (wrong type, empty, unknown or unavailable
        agent) is rejected, logged and counted, and the queue's strategy decides.

    Budget: 20 ms, synchronous; this is the hot path. Added in contract 1.0.
    """


@_hook("routing", budget=0.020)
def callmesh_routing_outcome(outcome: RoutingOutcome) -> None:
    """Observe what became of an offer (accepted, rejected, timed out, withdrawn).

    For adaptive strategies and vendor analytics. Implementations run off the routing path:
    the engine does not wait for them, and their failures are only logged and counted.

    Args:
        outcome: the contact, queue, agent, result, and who made the decision.

    Returns:
        None. Every plugin is called.

    Budget: 20 ms. Added in contract 1.0.
    """


# =============================================================================================
# CRM: who is calling, and what happened
# =============================================================================================
@_hook("crm", budget=2.0, asynchronous=True, firstresult=True)
async def callmesh_crm_lookup(query: CallerQuery) -> CallerRecord | None:
    """Look up the caller for the agent's screen pop (and for routing attributes).

    Args:
        query: the contact's id, channel, ANI/address, DNIS and IVR-gathered attributes.

    Returns:
        A :class:`~callmesh.plugins.types.CallerRecord` with ``found=True``, or None when
        this CRM does not know the caller. The first found record wins. When no CRM answers,
        or every CRM fails or times out, the screen pop is
        :data:`~callmesh.plugins.types.UNKNOWN_CALLER` and the call goes on.

    Budget: 2 s, async (``async def``); retries must fit inside it. Added in contract 1.0.
    """


@_hook("crm", budget=5.0, asynchronous=True)
async def callmesh_crm_record_interaction(interaction: Interaction) -> None:
    """Record a finished interaction in the CRM (a call log, a ticket note).

    Args:
        interaction: the finished contact with its timings, agent, transcript and
            disposition.

    Returns:
        None. Every plugin is called; a failure is logged and counted, never retried by
        the manager.

    Budget: 5 s, async. Added in contract 1.0.
    """


# =============================================================================================
# QA: how well was it handled
# =============================================================================================
@_hook("qa", budget=10.0, asynchronous=True)
async def callmesh_qa_score(
    interaction: Interaction, scorecard: Scorecard
) -> Sequence[CriterionScore] | None:
    """Score an interaction against a scorecard; every scorer contributes.

    Args:
        interaction: the finished contact (transcript or chat text, hold and talk time).
        scorecard: the criteria, each with a weight and a ``rule`` naming its check.

    Returns:
        Scores (0.0..1.0) for the criteria whose rule this scorer understands, or None.
        The manager merges all scorers' answers: a criterion's score is the mean of its
        scorers' scores, the total is the weighted mean over scored criteria (0..100).
        A score outside 0..1 or for an unknown criterion is rejected and counted.

    Budget: 10 s, async. Added in contract 1.0.
    """


# =============================================================================================
# Notifications: tell a person
# =============================================================================================
@_hook("notifications", budget=10.0, asynchronous=True)
async def callmesh_contact_event(event: ContactEvent) -> None:
    """React to a contact event: a missed or abandoned call, a voicemail, a callback request.

    Args:
        event: what happened, to which contact, in which queue, and when.

    Returns:
        None. Every notifier is called; a failure is logged and counted.

    Budget: 10 s, async. Added in contract 1.0.
    """


# =============================================================================================
# Dialer pacing: how many calls to place now
# =============================================================================================
@_hook("pacing", budget=0.100, firstresult=True)
def callmesh_dialer_pace(request: PacingRequest) -> PacingDecision | None:
    """Decide how many calls a dialer campaign should place now.

    Args:
        request: the campaign, its mode, agents available, calls in flight, contacts
            pending, and recent answer and abandon rates.

    Returns:
        A :class:`~callmesh.plugins.types.PacingDecision`, or None to leave it to the next
        plugin. The first non-None answer wins. A negative count is rejected; a count above
        ``pending_contacts`` is capped; while ``abandon_rate`` exceeds ``max_abandon_rate``
        the built-in progressive pacing (one call per free agent) caps the answer. With no
        answer, progressive pacing decides.

    Budget: 100 ms, synchronous. Added in contract 1.0.
    """
