"""One tenant's plugins: enabled from ``ContactCenter.spec.plugins``, called under isolation.

:class:`PluginManager` is what the workers hold. It implements the ACD's
:class:`~callmesh.acd.strategy.RoutingPolicy` (``route`` / ``observe``) and offers one
method per other hook family (:meth:`~PluginManager.lookup_caller`,
:meth:`~PluginManager.record_interaction`, :meth:`~PluginManager.score_interaction`,
:meth:`~PluginManager.notify`, :meth:`~PluginManager.pace`). It uses pluggy for what pluggy
is good at (registration, signature checks against the specs, ``check_pending``, call order)
and calls each implementation itself, one at a time, under
:class:`~callmesh.plugins.isolation.Isolation`, so every failure is attributed to a plugin
and a fallback always decides.

Routing, per decision:

1. the override chain (``callmesh_route_contact``), first valid non-None answer wins;
   a failing or invalid override is skipped (logged, counted);
2. the queue's named strategy (registered through ``callmesh_routing_strategies``);
3. if that strategy is missing, fails, answers an invalid decision or (a vendor's) makes no
   decision: the built-in fallback, ``skills-best-match`` when the contact requires skills,
   else ``longest-idle-agent``. Its decision says so, for the call's trace: ``decided_by`` is
   ``routing:fallback:<strategy>`` and ``reason`` is ``"<why>; fell back: <its reason>"``,
   the engine's own vocabulary (``engine:<strategy>``, ``"<problem>; fell back: ..."``).
   A built-in strategy that finds no candidate answers None to the engine: that is no failure.

A decision is valid when it is a ``RoutingDecision`` whose ``agent_ids`` are a non-empty
tuple of candidate ids (an unknown agent, or one not Available, is not a candidate).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pluggy
from callmesh.plugins import hookspecs
from callmesh.plugins.catalog import DEFAULT_PLUGINS, LoadedPlugin, PluginCatalog
from callmesh.plugins.errors import PluginConfigError, PluginContractError, PluginLoadError
from callmesh.plugins.hookspecs import HOOKS, PROJECT
from callmesh.plugins.isolation import FAILED, FailureReason, Isolation, PluginFailures
from callmesh.plugins.types import (
    UNKNOWN_CALLER,
    CallerQuery,
    CallerRecord,
    ContactEvent,
    CriterionScore,
    Interaction,
    PacingDecision,
    PacingRequest,
    QAResult,
    Scorecard,
)
from pydantic import BaseModel, ValidationError

from callmesh.acd.strategy import (
    RoutingDecision,
    RoutingOutcome,
    RoutingRequest,
    RoutingStrategy,
)

__all__ = [
    "FALLBACK_DECIDED_BY",
    "INLINE_ENV",
    "TRACE_ENV",
    "EnabledPlugin",
    "PluginManager",
    "parse_plugin_specs",
]

log = logging.getLogger("callmesh.plugins")
TRACE_ENV = "CALLMESH_TRACE_PLUGINS"
INLINE_ENV = "CALLMESH_INLINE_PLUGINS"
FALLBACK_PLUGIN = "routing"
LONGEST_IDLE = "longest-idle-agent"
SKILLS_BEST_MATCH = "skills-best-match"
FALLBACK_DECIDED_BY = f"{FALLBACK_PLUGIN}:fallback:"
"""How the ``decided_by`` of a decision the manager's fallback made begins (then the built-in
strategy's name): two values in all, so a metric labelled by ``decided_by`` stays small."""


@dataclass(frozen=True, slots=True)
class EnabledPlugin:
    """A plugin enabled for the tenant.

    Attributes:
        name: the name it is registered under (``remote:<config.name>`` for instances of a
            multi-instance plugin).
        plugin: the loaded plugin.
        instance: the registered object (an instance of the class, or the module).
        config: its validated config, if it takes one.
    """

    name: str
    plugin: LoadedPlugin
    instance: object
    config: BaseModel | None


@dataclass(frozen=True, slots=True)
class _Impl:
    plugin: str
    fn: Callable[..., Any]
    trusted: bool
    inline: bool = False


@dataclass(frozen=True, slots=True)
class _Strategy:
    plugin: str
    strategy: RoutingStrategy
    trusted: bool
    inline: bool = False
    builtin: bool = False  # one of the core's strategies: its answers are not re-validated


def _field(item: object, key: str, default: object) -> object:
    if isinstance(item, Mapping):
        return item.get(key, default)
    return getattr(item, key, default)


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _instantiate(loaded: LoadedPlugin, config: BaseModel | None) -> object:
    obj = loaded.obj
    if inspect.ismodule(obj):
        return obj
    return obj() if config is None else obj(config)


def parse_plugin_specs(
    specs: Sequence[object], catalog: PluginCatalog, where: str = "spec.plugins"
) -> list[EnabledPlugin]:
    """Validate a tenant's ``spec.plugins`` and build the enabled plugins.

    Each item is a mapping or an object (such as ``callmesh.api``'s ``PluginRef``) with
    ``name``, optional ``config`` (a mapping) and optional ``enabled`` (default true).
    Built-ins from :data:`~callmesh.plugins.catalog.DEFAULT_PLUGINS` are added when not
    listed.

    Raises:
        PluginConfigError: every problem found, one per line, each naming its field, e.g.
            ``spec.plugins[1].config.url: Field required``.
        PluginLoadError: an enabled plugin failed to import.
    """
    problems: list[str] = []
    enabled: list[EnabledPlugin] = []
    seen: dict[str, int] = {}
    listed: set[str] = set()
    items: list[tuple[str, object]] = [(f"{where}[{i}]", item) for i, item in enumerate(specs)]
    for at, item in items:
        name = _field(item, "name", None)
        if not isinstance(name, str) or not name:
            problems.append(f"{at}.name: a plugin name is required (see `callmesh plugins list`)")
            continue
        listed.add(name)
        on = _field(item, "enabled", True)
        if not isinstance(on, bool):
            problems.append(f"{at}.enabled: must be true or false, got {on!r}")
            continue
        if not on:
            if name == FALLBACK_PLUGIN:
                problems.append(
                    f"{at}.enabled: the built-in {name!r} plugin is every queue's fallback and "
                    f"cannot be turned off; remove this entry"
                )
            continue
        raw_config = _field(item, "config", None)
        if raw_config is None:
            raw_config = {}
        if not isinstance(raw_config, Mapping):
            problems.append(f"{at}.config: must be a mapping, got {type(raw_config).__name__}")
            continue
        if name not in catalog:
            try:
                catalog.info(name)
            except PluginLoadError as exc:
                problems.append(f"{at}.name: {exc}")
            continue
        loaded = catalog.load(name)
        config: BaseModel | None = None
        if loaded.config_model is None:
            if raw_config:
                problems.append(f"{at}.config: plugin {name!r} takes no config; remove it")
                continue
        else:
            try:
                config = loaded.config_model.model_validate(dict(raw_config))
            except ValidationError as exc:
                problems += [f"{at}.config{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
                continue
        reg_name = name
        if loaded.multi_instance:
            instance_name = getattr(config, "name", None)
            if not isinstance(instance_name, str) or not instance_name:
                problems.append(f"{at}.config.name: required to tell instances of {name!r} apart")
                continue
            reg_name = f"{name}:{instance_name}"
        if reg_name in seen:
            problems.append(
                f"{at}.name: {reg_name!r} is already enabled at {where}[{seen[reg_name]}]; "
                f"list each plugin once"
            )
            continue
        seen[reg_name] = int(at.rsplit("[", 1)[1].rstrip("]"))
        try:
            instance = _instantiate(loaded, config)
        except Exception as exc:
            problems.append(
                f"{at}: plugin {name!r} could not start with this config: "
                f"{type(exc).__name__}: {exc}"
            )
            continue
        enabled.append(EnabledPlugin(reg_name, loaded, instance, config))
    for name in DEFAULT_PLUGINS:
        if name not in listed:
            loaded = catalog.load(name)
            enabled.insert(0, EnabledPlugin(name, loaded, _instantiate(loaded, None), None))
    if problems:
        raise PluginConfigError(problems)
    return enabled


_OBJECT_NAMES = frozenset(dir(object))


class _Pluggy(pluggy.PluginManager):
    """pluggy's manager, told which names cannot be hooks (pluggy documents both methods
    as the way to customize how hooks are picked up).

    pluggy looks at every name of a plugin, or of the hookspecs module, with
    ``inspect.getattr_static``: four fifths of building a :class:`PluginManager`, which
    ``callmesh simulate`` does for every replication. The names every object has
    (``__init__``, ``__eq__``, ...: ``dir(object)``) are skipped; every other name is still
    looked at, so a hook implementation whose name is not a hook still fails
    ``check_pending``, and one registered under another name with ``specname`` still counts.
    """

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        if name in _OBJECT_NAMES:
            return None
        return super().parse_hookimpl_opts(plugin, name)

    def parse_hookspec_opts(self, module_or_class: Any, name: str) -> pluggy.HookspecOpts | None:
        if name not in HOOKS:  # every spec is in HOOKS: the decorator that marks it adds it
            return None
        return super().parse_hookspec_opts(module_or_class, name)


class PluginManager:
    """A tenant's plugins, called under isolation; implements the ACD's ``RoutingPolicy``.

    Args:
        specs: the tenant's ``spec.plugins`` (mappings or ``PluginRef`` objects).
        catalog: where plugins are found (default: built-ins + installed entry points).
        failures: where failures are counted (default: a new :class:`PluginFailures`).
        isolation: how plugin code runs (default: :class:`Isolation` with its defaults).
        budgets: per-hook budget overrides in seconds (default: :data:`HOOKS` budgets).
        where: the field path used in config errors.

    Raises:
        PluginConfigError, PluginLoadError, PluginContractError: see :func:`parse_plugin_specs`
        and :meth:`_register`.
    """

    def __init__(
        self,
        specs: Sequence[object] = (),
        *,
        catalog: PluginCatalog | None = None,
        failures: PluginFailures | None = None,
        isolation: Isolation | None = None,
        budgets: Mapping[str, float] | None = None,
        where: str = "spec.plugins",
    ) -> None:
        self.catalog = catalog if catalog is not None else PluginCatalog()
        self.failures = failures if failures is not None else PluginFailures()
        trace = bool(os.environ.get(TRACE_ENV))
        self.inline = frozenset(
            p.strip() for p in os.environ.get(INLINE_ENV, "").split(",") if p.strip()
        )
        """Vendor plugins whose synchronous hooks run in the caller's thread (see isolation)."""
        self.isolation = (
            isolation if isolation is not None else Isolation(self.failures, trace=trace)
        )
        if isolation is not None:
            self.failures = isolation.failures
        self.budgets = {name: info.budget for name, info in HOOKS.items()}
        if budgets:
            unknown = set(budgets) - set(HOOKS)
            if unknown:
                raise ValueError(f"budgets for unknown hooks: {sorted(unknown)}")
            self.budgets.update(budgets)
        self.pm = _Pluggy(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins = parse_plugin_specs(specs, self.catalog, where)
        self._impls: dict[str, tuple[_Impl, ...]] = {}
        self.strategies: dict[str, _Strategy] = {}
        self._register()
        self._fallback_longest = self._builtin_strategy(LONGEST_IDLE)
        self._fallback_skills = self._builtin_strategy(SKILLS_BEST_MATCH)
        self._route_budget = self.budgets["callmesh_route_contact"]
        self._overrides = self._impls["callmesh_route_contact"]
        self._observers = self._impls["callmesh_routing_outcome"]
        self.wants_outcomes = bool(self._observers)
        """False when no plugin observes routing outcomes: the engine then builds none
        (see :class:`~callmesh.acd.strategy.RoutingPolicy`)."""
        self.direct_strategies: dict[str, RoutingStrategy] = (
            {name: e.strategy for name, e in self.strategies.items() if e.builtin}
            if not self._overrides and not self.isolation.trace
            else {}
        )
        """The strategies :meth:`route` would only call (see
        :class:`~callmesh.acd.strategy.RoutingPolicy`): the engine calls them itself, which
        spares an interpreted ``route`` per decision (a fifth of a decision's cost)."""
        self._unknown_strategies: dict[str, str] = {}
        """Why a strategy name no plugin registers cannot decide, by name (warned once)."""

    # -- setup -----------------------------------------------------------------------------
    def _register(self) -> None:
        """Register every enabled plugin with pluggy, check shapes, collect strategies."""
        for ep in self.plugins:
            try:
                self.pm.register(ep.instance, name=ep.name)
            except pluggy.PluginValidationError as exc:
                raise PluginContractError(f"plugin {ep.name!r}: {exc}") from exc
            for hook in ep.plugin.hooks:
                fn = getattr(ep.instance, hook)
                wants_async = HOOKS[hook].asynchronous
                if inspect.iscoroutinefunction(fn) != wants_async:
                    shape = "async def" if wants_async else "def (not async)"
                    raise PluginContractError(
                        f"plugin {ep.name!r}: {hook} must be implemented with {shape}"
                    )
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginContractError(
                f"{exc}; hook names must be one of: {', '.join(HOOKS)}"
            ) from exc
        trusted = {ep.name: ep.plugin.trusted for ep in self.plugins}
        inline = {ep.name: ep.plugin.info.name in self.inline for ep in self.plugins}
        for hook in HOOKS:
            impls = []
            for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
                if impl.hookwrapper or impl.wrapper:
                    raise PluginContractError(
                        f"plugin {impl.plugin_name!r}: {hook} may not be a wrapper; the "
                        f"manager calls each implementation on its own"
                    )
                name = impl.plugin_name
                impls.append(_Impl(name, impl.function, trusted[name], inline[name]))
            self._impls[hook] = tuple(impls)
        for impl in self._impls["callmesh_routing_strategies"]:
            self._collect_strategies(impl)

    def _collect_strategies(self, impl: _Impl) -> None:
        found: list[RoutingStrategy] = []
        hook = "callmesh_routing_strategies"
        budget = self.budgets[hook]
        result = self.isolation.call(
            impl.plugin, hook, impl.fn, (found.append,), budget, trusted=impl.trusted
        )
        if result is FAILED:
            return
        for strategy in found:
            name = getattr(strategy, "name", None)
            if (
                not isinstance(name, str)
                or not name
                or not callable(getattr(strategy, "choose", None))
            ):
                raise PluginContractError(
                    f"plugin {impl.plugin!r} registered {strategy!r}, which is not a "
                    f"RoutingStrategy (it needs a `name` string and a `choose(request)` method)"
                )
            other = self.strategies.get(name)
            if other is not None:
                raise PluginContractError(
                    f"routing strategy {name!r} is registered by both {other.plugin!r} and "
                    f"{impl.plugin!r}; rename one of them"
                )
            builtin = impl.plugin == FALLBACK_PLUGIN and impl.trusted
            self.strategies[name] = _Strategy(
                impl.plugin, strategy, impl.trusted, impl.inline, builtin
            )

    def _builtin_strategy(self, name: str) -> RoutingStrategy:
        entry = self.strategies.get(name)
        if entry is None or entry.plugin != FALLBACK_PLUGIN:
            raise PluginContractError(
                f"the built-in routing strategy {name!r} is missing; the fallback needs it"
            )
        return entry.strategy

    def hooks_of(self, name: str) -> tuple[str, ...]:
        """The hooks the named enabled plugin implements."""
        for ep in self.plugins:
            if ep.name == name:
                return ep.plugin.hooks
        raise KeyError(name)

    # -- routing (the RoutingPolicy protocol) ----------------------------------------------
    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        """Decide who gets ``request.contact``: overrides, the queue's strategy, the fallback."""
        iso = self.isolation
        for impl in self._overrides:
            decision = iso.call(
                impl.plugin,
                "callmesh_route_contact",
                impl.fn,
                (request,),
                self._route_budget,
                trusted=impl.trusted,
                inline=impl.inline,
            )
            if decision is None or decision is FAILED:
                continue
            if not self._rejected(impl.plugin, "callmesh_route_contact", decision, request):
                iso.succeeded(impl.plugin)
                return self._stamp(decision, impl.plugin)
        entry = self.strategies.get(request.strategy)
        if entry is None:
            cause = self._unknown_strategies.get(request.strategy)
            if cause is None:
                registered = ", ".join(sorted(self.strategies))
                cause = self._unknown_strategies[request.strategy] = (
                    f"no enabled plugin registers strategy {request.strategy!r} "
                    f"(registered: {registered})"
                )
                log.warning(
                    "queue %r names routing strategy %r, which no enabled plugin registers "
                    "(registered: %s); the built-in fallback decides",
                    request.queue,
                    request.strategy,
                    registered,
                )
        elif entry.builtin and not iso.trace:
            # The hot path: one of our own pure strategies, guarded against exceptions only.
            try:
                return entry.strategy.choose(request)
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
                iso.failed(
                    entry.plugin,
                    "callmesh_route_contact",
                    FailureReason.RAISED,
                    f"{request.strategy}: {problem}",
                )
                cause = f"{self._who(entry, request)} raised {problem}"
        else:
            decision = iso.call(
                entry.plugin,
                "callmesh_route_contact",
                entry.strategy.choose,
                (request,),
                self._route_budget,
                trusted=entry.trusted,
                inline=entry.inline,
            )
            if decision is FAILED:
                cause = self._failure(entry, request)
            elif entry.builtin:
                return decision  # type: ignore[no-any-return]
            else:
                problem = (
                    ""
                    if decision is None
                    else self._rejected(entry.plugin, "callmesh_route_contact", decision, request)
                )
                if problem:
                    cause = f"{self._who(entry, request)} was rejected: {problem}"
                else:
                    iso.succeeded(entry.plugin)
                    if decision is not None:
                        return self._stamp(decision, entry.plugin)
                    cause = f"{self._who(entry, request)} made no decision"
        return self._fell_back(request, cause)

    @staticmethod
    def _who(entry: _Strategy, request: RoutingRequest) -> str:
        return f"strategy {request.strategy!r} of plugin {entry.plugin!r}"

    def _failure(self, entry: _Strategy, request: RoutingRequest) -> str:
        """How the queue's strategy failed, as the isolation layer counted and logged it."""
        who = self._who(entry, request)
        last = self.isolation.failures.last(entry.plugin, "callmesh_route_contact")
        reason, detail = last if last is not None else (None, "")
        if reason is FailureReason.RAISED:
            return f"{who} raised {detail}"
        if reason is FailureReason.TIMEOUT:
            return f"{who} gave no usable answer within its budget ({detail})"
        if reason is FailureReason.CIRCUIT_OPEN:
            return f"{who} was skipped: the plugin failed too often in a row (circuit open)"
        if reason is FailureReason.SATURATED:
            return f"{who} was refused: {detail} (saturated)"
        return f"{who} failed: {detail or 'no answer'}"

    def _fell_back(self, request: RoutingRequest, cause: str) -> RoutingDecision | None:
        """The built-in fallback's decision, marked as a fallback and saying why (``cause``)."""
        decision = self._fallback(request)
        if decision is None:
            return None
        return replace(
            decision,
            decided_by=f"{FALLBACK_DECIDED_BY}{decision.decided_by}",
            reason=f"{cause}; fell back: {decision.reason}",
            fallback=True,
        )

    def _fallback(self, request: RoutingRequest) -> RoutingDecision | None:
        """The built-in fallback's own decision (unmarked), or None if it has none."""
        strategy = self._fallback_skills if request.contact.skills else self._fallback_longest
        try:
            return strategy.choose(request)
        except Exception:  # e.g. a bad skills-best-match param: the engine's own fallback decides
            log.exception("built-in fallback %r failed for queue %r", strategy.name, request.queue)
            return None

    def _rejected(self, plugin: str, hook: str, decision: object, request: RoutingRequest) -> str:
        """Why ``decision`` cannot be used (recorded as the plugin's failure), or "" if it can."""
        if not isinstance(decision, RoutingDecision):
            problem = f"answered {type(decision).__name__}, not RoutingDecision"
            self.isolation.failed(plugin, hook, FailureReason.WRONG_TYPE, problem)
            return problem
        ids = decision.agent_ids
        if not isinstance(ids, tuple) or not ids:
            problem = "agent_ids must be a non-empty tuple"
            self.isolation.failed(plugin, hook, FailureReason.INVALID, problem)
            return problem
        candidates = request.candidates
        for agent_id in ids:
            if not isinstance(agent_id, str) or agent_id not in candidates:
                problem = (
                    f"agent {agent_id!r} is not a candidate for contact {request.contact.id!r} "
                    f"(unknown, not Available, no capacity or lacking a skill)"
                )
                self.isolation.failed(plugin, hook, FailureReason.INVALID, problem)
                return problem
        return ""

    @staticmethod
    def _stamp(decision: RoutingDecision, plugin: str) -> RoutingDecision:
        if decision.decided_by == plugin or decision.decided_by.startswith(plugin + ":"):
            return decision
        return replace(decision, decided_by=f"{plugin}:{decision.decided_by}")

    def observe(self, outcome: RoutingOutcome) -> None:
        """Tell every observer what became of an offer, without waiting for vendor code."""
        for impl in self._observers:
            self.isolation.fire(
                impl.plugin, "callmesh_routing_outcome", impl.fn, (outcome,), trusted=impl.trusted
            )

    # -- CRM -------------------------------------------------------------------------------
    async def lookup_caller(self, query: CallerQuery) -> CallerRecord:
        """The screen pop: the first CRM's found record, else ``UNKNOWN_CALLER``. Never raises."""
        hook = "callmesh_crm_lookup"
        for impl in self._impls[hook]:
            record = await self.isolation.acall(
                impl.plugin, hook, impl.fn, (query,), self.budgets[hook]
            )
            if record is FAILED or record is None:
                continue
            if not isinstance(record, CallerRecord):
                self.isolation.failed(
                    impl.plugin,
                    hook,
                    FailureReason.WRONG_TYPE,
                    f"answered {type(record).__name__}, not CallerRecord",
                )
                continue
            self.isolation.succeeded(impl.plugin)
            if record.found:
                return replace(record, source=impl.plugin)
        return UNKNOWN_CALLER

    async def record_interaction(self, interaction: Interaction) -> int:
        """Record ``interaction`` in every CRM, concurrently; how many succeeded."""
        hook = "callmesh_crm_record_interaction"
        results = await self._all(hook, (interaction,))
        return sum(1 for _, result in results if result is not FAILED)

    # -- QA --------------------------------------------------------------------------------
    async def score_interaction(self, interaction: Interaction, scorecard: Scorecard) -> QAResult:
        """Score ``interaction`` with every scorer and combine their answers."""
        hook = "callmesh_qa_score"
        ids = {c.id for c in scorecard.criteria}
        by_criterion: dict[str, list[CriterionScore]] = {c.id: [] for c in scorecard.criteria}
        for plugin, answer in await self._all(hook, (interaction, scorecard)):
            if answer is FAILED or answer is None:
                continue
            if isinstance(answer, str | bytes) or not isinstance(answer, Sequence):
                self.isolation.failed(
                    plugin,
                    hook,
                    FailureReason.WRONG_TYPE,
                    f"answered {type(answer).__name__}, not a sequence of CriterionScore",
                )
                continue
            good: list[CriterionScore] = []
            for item in answer:
                if not isinstance(item, CriterionScore):
                    problem = f"an item is {type(item).__name__}, not CriterionScore"
                elif item.criterion_id not in ids:
                    problem = f"scored unknown criterion {item.criterion_id!r}"
                elif not isinstance(item.score, int | float) or not 0.0 <= item.score <= 1.0:
                    problem = f"score {item.score!r} for {item.criterion_id!r} is not in 0..1"
                else:
                    good.append(replace(item, score=float(item.score), scorer=plugin))
                    continue
                reason = (
                    FailureReason.WRONG_TYPE
                    if not isinstance(item, CriterionScore)
                    else FailureReason.INVALID
                )
                self.isolation.failed(plugin, hook, reason, problem)
                good = []
                break
            for score in good:
                by_criterion[score.criterion_id].append(score)
        weighted = total_weight = 0.0
        merged: list[CriterionScore] = []
        unscored: list[str] = []
        for criterion in scorecard.criteria:
            scores = by_criterion[criterion.id]
            if not scores:
                unscored.append(criterion.id)
                continue
            merged += scores
            mean = sum(s.score for s in scores) / len(scores)
            weighted += criterion.weight * mean
            total_weight += criterion.weight
        total = round(100.0 * weighted / total_weight, 2) if total_weight else 0.0
        return QAResult(
            interaction_id=interaction.id,
            scorecard=scorecard.name,
            score=total,
            passed=bool(total_weight) and total >= scorecard.pass_mark,
            criteria=tuple(merged),
            unscored=tuple(unscored),
        )

    # -- notifications ---------------------------------------------------------------------
    async def notify(self, event: ContactEvent) -> int:
        """Tell every notifier about ``event``, concurrently; how many succeeded."""
        results = await self._all("callmesh_contact_event", (event,))
        return sum(1 for _, result in results if result is not FAILED)

    # -- pacing ----------------------------------------------------------------------------
    def pace(self, request: PacingRequest) -> PacingDecision:
        """How many calls to place now: the first valid plugin answer, made safe, else progressive."""
        hook = "callmesh_dialer_pace"
        progressive = max(0, min(request.pending_contacts, request.available_agents))
        for impl in self._impls[hook]:
            answer = self.isolation.call(
                impl.plugin,
                hook,
                impl.fn,
                (request,),
                self.budgets[hook],
                trusted=impl.trusted,
                inline=impl.inline,
            )
            if answer is None or answer is FAILED:
                continue
            if not isinstance(answer, PacingDecision) or not isinstance(answer.calls, int):
                self.isolation.failed(
                    impl.plugin,
                    hook,
                    FailureReason.WRONG_TYPE,
                    f"answered {type(answer).__name__}, not PacingDecision with an int count",
                )
                continue
            if answer.calls < 0:
                self.isolation.failed(
                    impl.plugin, hook, FailureReason.INVALID, f"negative count {answer.calls}"
                )
                continue
            self.isolation.succeeded(impl.plugin)
            calls = min(answer.calls, request.pending_contacts)
            reason = answer.reason
            if request.abandon_rate > request.max_abandon_rate and calls > progressive:
                calls = progressive
                reason = f"{reason}; capped to progressive: abandon rate above the ceiling"
            return PacingDecision(calls, impl.plugin, reason)
        return PacingDecision(progressive, "progressive", "one call per available agent")

    # -- helpers ---------------------------------------------------------------------------
    async def _all(self, hook: str, args: tuple[Any, ...]) -> list[tuple[str, Any]]:
        impls = self._impls[hook]
        budget = self.budgets[hook]
        results = await asyncio.gather(
            *(self.isolation.acall(i.plugin, hook, i.fn, args, budget) for i in impls)
        )
        for impl, result in zip(impls, results, strict=True):
            if result is not FAILED:
                self.isolation.succeeded(impl.plugin)
        return [(i.plugin, r) for i, r in zip(impls, results, strict=True)]

    async def aclose(self) -> None:
        """Close every plugin that has ``aclose()`` or ``close()``, then the isolation lanes."""
        for ep in self.plugins:
            closer = getattr(ep.instance, "aclose", None)
            try:
                if closer is not None and inspect.iscoroutinefunction(closer):
                    await closer()
                elif callable(getattr(ep.instance, "close", None)):
                    ep.instance.close()  # type: ignore[attr-defined]
            except Exception:
                log.exception("plugin %r failed to close", ep.name)
        self.isolation.close()
