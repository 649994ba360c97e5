"""The workload file: the traffic `callmesh simulate` plays against a tenant's manifests.

A workload is YAML, read once and checked twice: first on its own (types, ranges, an
interval grid that tiles the day), then against the tenant it is played on (every queue,
flow, menu and team it names exists). Every problem names its field and the fix, and all of
them are reported together, before any simulation starts. ``docs/simulate.md`` documents
each field with an example; in short::

    apiVersion: sim.callmesh.io/v1alpha1
    kind: Workload
    metadata: {name: monday, namespace: acme-insurance}
    spec:
      weekday: mon              # which AgentTeam shifts apply
      start: "08:00"            # the simulated day, in the center's time zone
      end: "20:00"
      intervalMinutes: 30       # must tile start..end
      arrivals:                 # Poisson arrivals, a rate per interval
        - queue: claims
          perHour: [60, 90, ...] # one per interval, a mapping {"08:00": 60, ...}, or one number
        - flow: acme-main        # calls that walk an IVRFlow first
          perHour: 120
      queues:
        claims:
          handleTime: {type: lognormal, mean: 320, sd: 150}
          patience: {type: exponential, mean: 120}   # omit: callers never hang up
      ivr:
        - flow: acme-main
          menus:
            - node: main-menu
              choices: {"1": 0.6, "2": 0.3}          # the rest presses nothing
      agents:
        answer: {type: constant, value: 2}          # ring time before an agent picks up
        noAnswerPercent: 1                          # offers left ringing (RONA)
      teams:
        chat-team: {chatConcurrency: 3}
      campaigns:                # DialerCampaigns of the manifests to play, and how numbers answer
        renewals:
          contactRate: 0.3                            # a person answers 30% of dials
          machineRate: 0.15                           # an answering machine 15%
          talkTime: {type: lognormal, mean: 240, sd: 150}

The kind is not a Kubernetes resource: it lives next to the manifests but is only read by
the simulator (its ``apiVersion`` is ``sim.callmesh.io/v1alpha1`` so nothing applies it).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from callmesh.api import Channel, NodeType, Tenant
from callmesh.api.base import DateString, Weekday
from callmesh.api.dialercampaign import CampaignState, DialerMode
from callmesh.sim.distributions import Constant, Distribution, Exponential, Uniform

__all__ = [
    "API_VERSION",
    "KIND",
    "AgentBehaviour",
    "Arrival",
    "CampaignTraffic",
    "FlowChoices",
    "MenuChoices",
    "QueueTraffic",
    "TeamTraffic",
    "Workload",
    "WorkloadError",
    "WorkloadSpec",
    "check_against",
    "clock",
    "is_workload_document",
    "parse_workload",
    "read_workload",
]

API_VERSION = "sim.callmesh.io/v1alpha1"
KIND = "Workload"

#: ``HH:MM``; the end of the day may be ``24:00``.
Clock = Annotated[
    str, StringConstraints(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", max_length=5)
]
_Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]
_Rate = Annotated[float, Field(ge=0, allow_inf_nan=False)]


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def clock(hhmm: str) -> int:
    """Minutes since midnight of an ``HH:MM`` string (``24:00`` is 1440)."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Arrival(_Model):
    """A stream of Poisson arrivals into a queue, or into an IVR flow that leads to queues."""

    queue: _Name | None = Field(default=None, description="Queue the contacts enter directly.")
    flow: _Name | None = Field(
        default=None, description="IVRFlow the calls walk first (voice only)."
    )
    per_hour: _Rate | list[_Rate] | dict[str, _Rate] = Field(
        description=(
            "Arrival rate in contacts per hour: one number for the whole day, a list with one"
            ' rate per interval, or a mapping from interval start ("08:30") to rate.'
        )
    )

    @model_validator(mode="after")
    def _one_target(self) -> Arrival:
        if (self.queue is None) == (self.flow is None):
            raise ValueError("set exactly one of queue or flow")
        return self


class QueueTraffic(_Model):
    """How long contacts of one queue take, and how long callers are willing to wait."""

    handle_time: Distribution = Field(
        description="Talk (or chat, or email) time in seconds, without wrap-up."
    )
    patience: Distribution | None = Field(
        default=None,
        description="Time a caller waits before hanging up; omit for callers who never do.",
    )


class MenuChoices(_Model):
    """What callers press at one menu node."""

    node: _Name = Field(description="Id of a menu node of the flow.")
    choices: dict[str, Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]] = Field(
        description="Digit -> probability; the rest (1 - sum) press nothing (timeout)."
    )
    seconds: Distribution = Field(
        default_factory=lambda: Constant(type="constant", value=5.0),
        description="Time from the menu prompt to the key press.",
    )

    @model_validator(mode="after")
    def _sums_to_at_most_one(self) -> MenuChoices:
        total = sum(self.choices.values())
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"choices sum to {total:g}: probabilities must add up to at most 1"
                " (the rest press nothing)"
            )
        return self


class FlowChoices(_Model):
    """Menu behaviour for one IVR flow."""

    flow: _Name = Field(description="Name of the IVRFlow.")
    menus: list[MenuChoices] = Field(
        default_factory=list,
        max_length=200,
        description="Per menu node, the digit probabilities.",
    )
    prompt_seconds: Distribution = Field(
        default_factory=lambda: Constant(type="constant", value=4.0),
        description="Time a play/say/announcement node takes.",
    )


class AgentBehaviour(_Model):
    """How simulated agents react to an offer."""

    answer: Distribution = Field(
        default_factory=lambda: Constant(type="constant", value=0.0),
        description="Ring time from the offer to the agent accepting it, in seconds.",
    )
    no_answer_percent: float = Field(
        default=0,
        ge=0,
        le=100,
        description="Percent of offers an agent lets ring out (a RONA).",
    )
    ready_after_no_answer: Distribution = Field(
        default_factory=lambda: Constant(type="constant", value=30.0),
        description="After a RONA the router sets the agent NotReady; it is ready again after this.",
    )


class TeamTraffic(_Model):
    """Per-team settings the simulation may override."""

    chat_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Chats each agent of the team takes at once (overrides capacity.chat).",
    )


_Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class CampaignTraffic(_Model):
    """How the numbers of one DialerCampaign answer (``spec.campaigns.<name>``).

    Every dial is drawn once: a person answers with ``contactRate``, an answering machine with
    ``machineRate``, the line is busy with ``busyRate``; the rest ring out at the campaign's
    ``pacing.ringTimeoutSeconds``. The three shares may not add up to more than 1.
    """

    contact_rate: _Share = Field(description="Share of dials a person answers (the contact rate).")
    machine_rate: _Share = Field(default=0.0, description="Share of dials a machine answers.")
    busy_rate: _Share = Field(default=0.05, description="Share of dials found busy.")
    answer_time: Distribution = Field(
        default_factory=lambda: Exponential(type="exponential", mean=10.0),
        description="Seconds from the dial to a person (or machine) answering.",
    )
    amd_seconds: float = Field(
        default=2.5,
        ge=0,
        le=10,
        allow_inf_nan=False,
        description="Seconds answering-machine detection takes.",
    )
    talk_time: Distribution = Field(
        default_factory=lambda: Exponential(type="exponential", mean=180.0),
        description="Talk time of a reached contact with the agent, in seconds (no wrap-up).",
    )
    wrap_up_seconds: float | None = Field(
        default=None,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description=(
            "What-if wrap-up after every call of the agents serving the campaign (their"
            " team's or the target queue's wrapUpSeconds otherwise). Wrap-up belongs to the"
            " agents, so it applies to their inbound calls too."
        ),
    )
    contacts: int = Field(
        default=30_000, ge=1, le=2_000_000, description="Size of the simulated contact list."
    )
    transfer_rate: _Share | None = Field(
        default=None,
        description=(
            "Agentless campaigns: share of the people reached who press the transfer digit"
            " (queued to the campaign's queue)."
        ),
    )
    opt_out_rate: _Share = Field(
        default=0.0,
        description="Agentless campaigns: share who press the opt-out digit (do-not-call).",
    )
    listen_time: Distribution = Field(
        default_factory=lambda: Uniform(type="uniform", low=8.0, high=30.0),
        description="Agentless campaigns: seconds of the message before the key press or hang-up.",
    )
    patience: Distribution | None = Field(
        default=None,
        description=(
            "Agentless campaigns: how long a listener who pressed the transfer digit waits"
            " in the queue before hanging up; omit for listeners who never do."
        ),
    )

    @model_validator(mode="after")
    def _shares(self) -> CampaignTraffic:
        total = self.contact_rate + self.machine_rate + self.busy_rate
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"contactRate + machineRate + busyRate = {total:g}: the shares of one dial"
                " must add up to at most 1 (the rest ring out)"
            )
        if self.transfer_rate is not None and self.transfer_rate + self.opt_out_rate > 1 + 1e-9:
            raise ValueError(
                f"transferRate + optOutRate = {self.transfer_rate + self.opt_out_rate:g}:"
                " at most 1 (the rest listen and hang up)"
            )
        return self


class WorkloadSpec(_Model):
    """One simulated day of traffic."""

    weekday: Weekday = Field(default=Weekday.mon, description="Day whose shifts apply.")
    date: DateString | None = Field(
        default=None,
        description=(
            "Calendar date simulated (YYYY-MM-DD), for business hours and holidays in IVR"
            " conditions; its weekday must match weekday. Default: a date in the first week"
            " of June 2026 with that weekday."
        ),
    )
    start: Clock = Field(default="00:00", description="Start of the simulated day, HH:MM.")
    end: Clock = Field(default="24:00", description="End of the day (arrivals stop), HH:MM.")
    interval_minutes: int = Field(
        default=30, ge=1, le=1440, description="Reporting interval; must tile start..end."
    )
    warmup_minutes: int = Field(
        default=0,
        ge=0,
        le=1440,
        description="Contacts arriving this early are simulated but left out of the KPIs.",
    )
    drain_minutes: int = Field(
        default=120,
        ge=0,
        le=1440,
        description="After end, contacts still in the center are followed this long.",
    )
    arrivals: Annotated[list[Arrival], Field(min_length=1, max_length=256)] = Field(
        description="Arrival streams."
    )
    queues: dict[str, QueueTraffic] = Field(
        default_factory=dict, description="Handle time and patience per queue."
    )
    ivr: list[FlowChoices] = Field(
        default_factory=list, max_length=64, description="Menu choices per IVR flow."
    )
    agents: AgentBehaviour = Field(
        default_factory=AgentBehaviour, description="How agents answer offers."
    )
    teams: dict[str, TeamTraffic] = Field(
        default_factory=dict, description="Per-team overrides, e.g. chat concurrency."
    )
    campaigns: dict[str, CampaignTraffic] = Field(
        default_factory=dict,
        max_length=64,
        description="DialerCampaigns to play (by name) and how their numbers answer.",
    )

    @model_validator(mode="after")
    def _grid(self) -> WorkloadSpec:
        start, end = clock(self.start), clock(self.end)
        if end <= start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        length = end - start
        if length % self.interval_minutes:
            raise ValueError(
                f"intervalMinutes {self.interval_minutes} does not tile the day"
                f" {self.start}-{self.end} ({length} min): pick a divisor of {length},"
                " e.g. 15, 30 or 60, or move start/end"
            )
        if self.date is not None:
            actual = _WEEKDAYS[dt.date.fromisoformat(self.date).weekday()]
            if actual != self.weekday.value:
                raise ValueError(
                    f"date {self.date} is a {actual} but weekday is {self.weekday.value}:"
                    f" set weekday: {actual}, or pick another date"
                )
        if self.warmup_minutes >= length:
            raise ValueError(f"warmupMinutes {self.warmup_minutes} leaves no time to measure")
        return self

    @property
    def day_seconds(self) -> float:
        """Length of the day (arrivals happen in [0, day_seconds))."""
        return (clock(self.end) - clock(self.start)) * 60.0

    @property
    def interval_seconds(self) -> float:
        """Length of one interval in seconds."""
        return self.interval_minutes * 60.0

    @property
    def intervals(self) -> int:
        """Number of intervals in the day."""
        return (clock(self.end) - clock(self.start)) // self.interval_minutes

    def calendar_date(self) -> dt.date:
        """The simulated date: ``date``, or the first-week-of-June-2026 day of ``weekday``."""
        if self.date is not None:
            return dt.date.fromisoformat(self.date)
        return dt.date(2026, 6, 1) + dt.timedelta(days=_WEEKDAYS.index(self.weekday.value))

    def interval_labels(self) -> list[str]:
        """``HH:MM`` start of each interval."""
        s = clock(self.start)
        return [_hhmm(s + i * self.interval_minutes) for i in range(self.intervals)]


class _Meta(_Model):
    name: _Name = Field(description="Name of the workload.")
    namespace: _Name | None = Field(
        default=None, description="Tenant (namespace) it applies to; the only one if unset."
    )


class Workload(_Model):
    """A workload document."""

    api_version: Literal["sim.callmesh.io/v1alpha1"] = Field(
        default="sim.callmesh.io/v1alpha1", alias="apiVersion", description=API_VERSION
    )
    kind: Literal["Workload"] = Field(default="Workload", description="Workload.")
    metadata: _Meta = Field(description="Name and tenant.")
    spec: WorkloadSpec = Field(description="The traffic.")

    def rates_per_second(self, index: int) -> list[float]:
        """Arrival rate of stream ``index``, per interval, in contacts per second.

        Assumes the workload passed :func:`parse_workload` (the rate shape was checked).
        """
        spec = self.spec
        rate = spec.arrivals[index].per_hour
        if isinstance(rate, int | float):
            hourly = [float(rate)] * spec.intervals
        elif isinstance(rate, list):
            hourly = [float(r) for r in rate]
        else:
            labels = spec.interval_labels()
            hourly = [float(rate[label]) for label in labels]
        return [r / 3600.0 for r in hourly]


class WorkloadError(ValueError):
    """A workload that cannot be simulated; ``problems`` lists every field at fault."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: the workload is invalid:\n{lines}")


_DISTRIBUTION_FIELDS = {
    "handleTime",
    "answerTime",
    "talkTime",
    "listenTime",
    "patience",
    "answer",
    "seconds",
    "promptSeconds",
    "readyAfterNoAnswer",
}
_DISTRIBUTION_TAGS = {"exponential", "lognormal", "constant", "uniform", "empirical"}
_SCALAR_TAGS = {"float", "int", "str", "constrained-float", "constrained-int", "constrained-str"}


def _loc(loc: Iterable[int | str]) -> str:
    """A pydantic error location as the user wrote it: camelCase, no union branch tags."""
    out = ""
    previous: int | str = ""
    for part in loc:
        tag = isinstance(part, str) and (
            "[" in part
            or part in _SCALAR_TAGS
            or (part in _DISTRIBUTION_TAGS and previous in _DISTRIBUTION_FIELDS)
        )
        if not tag:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else str(part)
        previous = part
    return out


def _pick_branch(errors: list[Any]) -> list[Any]:
    """Of the errors a union produces, drop "wrong type" ones when a branch of the right
    type reports something more precise at (or under) the same field."""
    located = [(_loc(e["loc"]), e) for e in errors]
    keep = []
    for where, err in located:
        wrong_type = str(err["type"]).endswith("_type") and len(err["loc"]) > 0
        if wrong_type and any(
            other is not err
            and not str(other["type"]).endswith("_type")
            and (w == where or w.startswith(where + ".") or w.startswith(where + "["))
            for w, other in located
        ):
            continue
        keep.append((where, err))
    return [err for _, err in keep]


def _check_rates(spec: WorkloadSpec) -> list[str]:
    problems = []
    labels = spec.interval_labels()
    for i, arrival in enumerate(spec.arrivals):
        where = f"spec.arrivals[{i}].perHour"
        rate = arrival.per_hour
        if isinstance(rate, list) and len(rate) != spec.intervals:
            problems.append(
                f"{where}: {len(rate)} rates for {spec.intervals} intervals of"
                f" {spec.interval_minutes} min from {spec.start} to {spec.end}:"
                " give one rate per interval"
            )
        elif isinstance(rate, dict):
            extra = sorted(set(rate) - set(labels))
            missing = [label for label in labels if label not in rate]
            if extra:
                problems.append(
                    f"{where}: {', '.join(extra)} not on the interval grid"
                    f" ({labels[0]}, {labels[1] if len(labels) > 1 else labels[0]}, ...):"
                    " use interval start times"
                )
            if missing:
                problems.append(
                    f"{where}: no rate for {', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''}: give a rate for every interval"
                )
    return problems


def parse_workload(data: object, source: str = "workload") -> Workload:
    """Validate a workload document (already parsed from YAML).

    Raises:
        WorkloadError: every problem, each naming its field, e.g.
            ``spec.queues.claims.handleTime.sd: Input should be greater than 0``.
    """
    if not isinstance(data, Mapping):
        raise WorkloadError(source, [f"expected a mapping (a Workload), got {type(data).__name__}"])
    try:
        workload = Workload.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in _pick_branch(list(exc.errors())):
            where = _loc(err["loc"]) or "(document)"
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {msg}")
        raise WorkloadError(source, problems) from None
    problems = _check_rates(workload.spec)
    if problems:
        raise WorkloadError(source, problems)
    return workload


def is_workload_document(data: object) -> bool:
    """Whether a YAML document is a Workload (so manifest loaders can set it aside)."""
    return isinstance(data, Mapping) and data.get("kind") == KIND


def read_workload(text: str, source: str = "workload") -> Workload:
    """Validate the single Workload document of a YAML text (the caller reads the file).

    Raises:
        WorkloadError: the text is not YAML, holds no or several Workloads, or is invalid;
            ``source`` (e.g. the file name) starts the message.
    """
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise WorkloadError(source, [f"cannot read it: {exc}"]) from None
    found = [d for d in docs if is_workload_document(d)]
    if len(found) != 1:
        raise WorkloadError(
            source,
            [f"expected one document with kind: {KIND}, found {len(found)}"],
        )
    return parse_workload(found[0], source)


# --- against the tenant ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Reach:
    queues: set[str]
    flows: set[str]


def _queues_reached(tenant: Tenant, workload: Workload) -> _Reach:
    """Queues contacts can end up in: direct arrivals, IVR queue nodes, overflow targets."""
    queues: set[str] = set()
    flows: set[str] = set()
    for arrival in workload.spec.arrivals:
        if arrival.queue is not None:
            queues.add(arrival.queue)
        elif arrival.flow is not None:
            flows.add(arrival.flow)
    for name in flows:
        flow = tenant.flows.get(name)
        if flow is None:
            continue
        for node in flow.spec.nodes:
            if node.type is NodeType.queue and node.queue is not None:
                queues.add(node.queue.queue)
    todo = list(queues)
    while todo:
        q = tenant.queues.get(todo.pop())
        if q is None or q.spec.overflow is None or q.spec.overflow.queue is None:
            continue
        target = q.spec.overflow.queue
        if target not in queues and q.spec.overflow.action.value == "queue":
            queues.add(target)
            todo.append(target)
    return _Reach(queues, flows)


def check_against(tenant: Tenant, workload: Workload, source: str = "workload") -> None:
    """Check that everything the workload names exists in ``tenant``.

    Raises:
        WorkloadError: listing every unknown queue, flow, menu node, digit or team, and
            every queue that can receive contacts but has no handle time.
    """
    spec = workload.spec
    problems: list[str] = []
    known_q = ", ".join(sorted(tenant.queues)) or "none"
    known_f = ", ".join(sorted(tenant.flows)) or "none"
    if workload.metadata.namespace and workload.metadata.namespace != tenant.namespace:
        problems.append(
            f"metadata.namespace: {workload.metadata.namespace!r} but the manifests are"
            f" tenant {tenant.namespace!r}: fix the namespace"
        )
    for i, arrival in enumerate(spec.arrivals):
        if arrival.queue is not None and arrival.queue not in tenant.queues:
            problems.append(
                f"spec.arrivals[{i}].queue: unknown queue {arrival.queue!r} in tenant"
                f" {tenant.namespace} (known: {known_q}): fix the name or add the Queue"
            )
        if arrival.flow is not None and arrival.flow not in tenant.flows:
            problems.append(
                f"spec.arrivals[{i}].flow: unknown IVRFlow {arrival.flow!r} in tenant"
                f" {tenant.namespace} (known: {known_f}): fix the name or add the IVRFlow"
            )
    for name in spec.queues:
        if name not in tenant.queues:
            problems.append(
                f"spec.queues.{name}: unknown queue {name!r} (known: {known_q}): fix the name"
            )
    reach = _queues_reached(tenant, workload)
    for name in sorted(reach.queues):
        if name in tenant.queues and name not in spec.queues:
            problems.append(
                f"spec.queues.{name}.handleTime: queue {name!r} receives contacts but has no"
                " handle time: add e.g. handleTime: {type: exponential, mean: 180}"
            )
    for i, fc in enumerate(spec.ivr):
        flow = tenant.flows.get(fc.flow)
        if flow is None:
            problems.append(
                f"spec.ivr[{i}].flow: unknown IVRFlow {fc.flow!r} (known: {known_f}): fix the name"
            )
            continue
        nodes = {n.id: n for n in flow.spec.nodes}
        for j, menu in enumerate(fc.menus):
            where = f"spec.ivr[{i}].menus[{j}]"
            node = nodes.get(menu.node)
            if node is None or node.type is not NodeType.menu or node.menu is None:
                menus = ", ".join(n for n, v in nodes.items() if v.type is NodeType.menu)
                problems.append(
                    f"{where}.node: {menu.node!r} is not a menu node of flow {fc.flow}"
                    f" (menus: {menus or 'none'}): fix the node id"
                )
                continue
            digits = {o.digit for o in node.menu.options}
            for digit in menu.choices:
                if digit not in digits:
                    problems.append(
                        f"{where}.choices.{digit}: menu {menu.node} has no option {digit!r}"
                        f" (options: {', '.join(sorted(digits))}): fix the digit"
                    )
    listed = {fc.flow: {m.node for m in fc.menus} for fc in spec.ivr}
    for name in sorted(reach.flows):
        flow = tenant.flows.get(name)
        if flow is None:
            continue
        for node in flow.spec.nodes:
            if node.type is NodeType.menu and node.id not in listed.get(name, set()):
                problems.append(
                    f"spec.ivr: flow {name} receives calls but its menu {node.id!r} has no"
                    f" choices: add {{flow: {name}, menus: [{{node: {node.id}, choices:"
                    ' {"1": 0.5, ...}}]} (the rest of the callers press nothing)'
                )
    for name, team in spec.teams.items():
        if name not in tenant.teams:
            known_t = ", ".join(sorted(tenant.teams)) or "none"
            problems.append(
                f"spec.teams.{name}: unknown AgentTeam {name!r} (known: {known_t}): fix the name"
            )
        elif team.chat_concurrency is not None and not any(
            tenant.queues[q].spec.channel is Channel.chat
            for q in tenant.queues
            if any(name in t.teams for t in tenant.queues[q].spec.tiers)
        ):
            problems.append(
                f"spec.teams.{name}.chatConcurrency: team {name!r} serves no chat queue:"
                " remove it or add the team to a chat queue's tiers"
            )
    for name in spec.queues:
        q = tenant.queues.get(name)
        if q is not None and q.spec.channel is not Channel.voice:
            traffic = spec.queues[name]
            if traffic.patience is not None and q.spec.channel is Channel.email:
                problems.append(
                    f"spec.queues.{name}.patience: emails do not hang up: remove patience"
                )
    problems += _check_campaigns(tenant, workload)
    if problems:
        raise WorkloadError(source, problems)


def day_bounds(tenant: Tenant, workload: Workload) -> tuple[float, float]:
    """POSIX times of the simulated day's start and end, in the center's time zone."""
    spec = workload.spec
    zone = tenant.center.spec.time_zone if tenant.center is not None else "UTC"
    midnight = dt.datetime.combine(spec.calendar_date(), dt.time(), tzinfo=ZoneInfo(zone))
    start = midnight + dt.timedelta(minutes=clock(spec.start))
    return start.timestamp(), start.timestamp() + spec.day_seconds


def _window_opens_during(tenant: Tenant, workload: Workload, name: str) -> bool:
    """Whether campaign ``name``'s calling window is open at some minute of the day."""
    window = tenant.campaigns[name].spec.calling_window
    zone = window.default_time_zone
    start, end = day_bounds(tenant, workload)
    days = {d.value for d in window.days}
    t = start
    while t < end:
        local = dt.datetime.fromtimestamp(t, tz=ZoneInfo(zone))
        if _WEEKDAYS[local.weekday()] in days and window.start <= f"{local:%H:%M}" < window.end:
            return True
        t += 60.0
    return False


def _check_campaigns(tenant: Tenant, workload: Workload) -> list[str]:
    """Every campaign the workload plays exists, dials on its own, and can dial that day."""
    problems: list[str] = []
    known = ", ".join(sorted(tenant.campaigns)) or "none"
    for name, traffic in workload.spec.campaigns.items():
        where = f"spec.campaigns.{name}"
        resource = tenant.campaigns.get(name)
        if resource is None:
            problems.append(
                f"{where}: unknown DialerCampaign {name!r} in tenant {tenant.namespace}"
                f" (known: {known}): fix the name or add the DialerCampaign"
            )
            continue
        spec = resource.spec
        if spec.mode is DialerMode.preview:
            problems.append(
                f"{where}: campaign {name!r} is in preview mode, where an agent decides every"
                " dial: the simulator plays progressive, predictive and agentless campaigns;"
                " remove it from the workload"
            )
        if spec.state is CampaignState.paused:
            problems.append(
                f"{where}: campaign {name!r} is paused (spec.state), so it would place no"
                " call: set state: running in the manifest or remove it from the workload"
            )
        if spec.queue not in tenant.queues:
            problems.append(
                f"{where}: campaign {name!r} sends its calls to queue {spec.queue!r}, which"
                " the manifests do not define: fix the DialerCampaign's spec.queue"
            )
        agentless = spec.mode is DialerMode.agentless
        if agentless and traffic.transfer_rate is None:
            problems.append(
                f"{where}.transferRate: campaign {name!r} is agentless: give the share of"
                " listeners who press the transfer digit, e.g. transferRate: 0.04"
            )
        if not agentless:
            for key, value in (
                ("transferRate", traffic.transfer_rate),
                ("optOutRate", traffic.opt_out_rate or None),
                ("patience", traffic.patience),
            ):
                if value is not None:
                    problems.append(
                        f"{where}.{key}: only agentless campaigns have a message to press"
                        f" keys on (campaign {name!r} is {spec.mode.value}): remove it"
                    )
        if spec.state is CampaignState.running and not _window_opens_during(tenant, workload, name):
            window = spec.calling_window
            problems.append(
                f"{where}: the calling window of campaign {name!r} ({window.start}-{window.end}"
                f" {window.default_time_zone}, {', '.join(d.value for d in window.days)}) is"
                f" closed all through the simulated day ({workload.spec.weekday.value}"
                f" {workload.spec.start}-{workload.spec.end}): pick another weekday or hours"
            )
    return problems


def mean_rate_per_hour(workload: Workload, index: int) -> float:
    """Mean hourly rate of one stream over the day (for summaries)."""
    rates = workload.rates_per_second(index)
    return math.fsum(rates) / len(rates) * 3600.0
