"""Compile an ``IVRFlow`` once into plain, indexed nodes the sessions walk.

:func:`compile_flow` checks the graph (every target exists, every schedule exists, every
regular expression and CEL expression compiles, every time zone is known), then turns each
pydantic node into a small frozen record with its templates parsed, its regex and CEL
compiled and its prompts prepared. Sessions never touch pydantic: one compiled flow serves
every call (and every simulated caller) that dials it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from callmesh.api.base import Prompt
from callmesh.api.contactcenter import Schedule
from callmesh.api.ivrflow import IVRFlow, IVRFlowSpec, Node, NodeType
from callmesh.ivr.actions import PromptRef, SkillNeed
from callmesh.ivr.expressions import CelExpression, ExpressionSyntaxError
from callmesh.ivr.hours import BusinessHours, ScheduleError
from callmesh.ivr.templates import Template

__all__ = [
    "CallbackStep",
    "CollectStep",
    "CompiledFlow",
    "ConditionStep",
    "FlowError",
    "HangupStep",
    "LookupStep",
    "MenuStep",
    "PlayStep",
    "PromptTemplate",
    "QueueStep",
    "SayStep",
    "SetAttributeStep",
    "Step",
    "TransferStep",
    "VoicemailStep",
    "compile_flow",
]

#: Call facts that templates and expressions read and setAttribute may not overwrite.
RESERVED_NAMES = frozenset({"ani", "dnis"})
_DTMF = frozenset("0123456789*#")


class FlowError(ValueError):
    """The flow cannot run; the message lists every problem with its field and the fix."""

    def __init__(self, flow: str, problems: list[str]) -> None:
        super().__init__(f"IVRFlow {flow}: " + "; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A prompt whose text may hold ``{{attribute}}`` templates."""

    fixed: PromptRef | None
    """The prompt itself when nothing needs filling in (the common case)."""
    file: str | None
    text: Template | None
    voice: str | None
    language: str

    @classmethod
    def from_api(cls, prompt: Prompt, language: str) -> PromptTemplate:
        """Prepare an ``api`` prompt."""
        text = Template.parse(prompt.text) if prompt.text is not None else None
        fixed = None
        if text is None or not text.names:
            fixed = PromptRef(
                file=prompt.file, text=prompt.text, voice=prompt.voice, language=language
            )
        return cls(fixed=fixed, file=prompt.file, text=text, voice=prompt.voice, language=language)

    def render(self, ani: str, dnis: str, attributes: Mapping[str, str]) -> PromptRef:
        """The prompt for this call (raises ``MissingAttribute`` like a template)."""
        if self.fixed is not None:
            return self.fixed
        assert self.text is not None
        return PromptRef(
            file=self.file,
            text=self.text.render(ani, dnis, attributes),
            voice=self.voice,
            language=self.language,
        )


# --- compiled nodes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayStep:
    """A play node."""

    id: str
    prompt: PromptTemplate
    next: str


@dataclass(frozen=True, slots=True)
class SayStep:
    """A say node; ``check`` is the pattern a value of its kind must match (None: any)."""

    id: str
    value: Template
    kind: str
    language: str
    check: re.Pattern[str] | None
    next: str


@dataclass(frozen=True, slots=True)
class MenuStep:
    """A menu node: one key from ``options``."""

    id: str
    prompt: PromptTemplate
    options: Mapping[str, str]
    regex: str
    timeout: float
    attempts: int
    invalid_prompt: PromptTemplate | None
    invalid_target: str | None
    timeout_target: str | None


@dataclass(frozen=True, slots=True)
class CollectStep:
    """A collect node: digits into ``attribute``."""

    id: str
    prompt: PromptTemplate
    attribute: str
    min_digits: int
    max_digits: int
    terminator: str
    timeout: float
    attempts: int
    pattern: re.Pattern[str]
    next: str
    invalid_target: str | None


@dataclass(frozen=True, slots=True)
class ConditionStep:
    """A condition node: exactly one of ``hours`` and ``expression`` is set."""

    id: str
    hours: BusinessHours | None
    expression: CelExpression | None
    if_true: str
    if_false: str


@dataclass(frozen=True, slots=True)
class LookupStep:
    """A crmLookup node."""

    id: str
    key: Template
    timeout: float
    next: str
    not_found: str


@dataclass(frozen=True, slots=True)
class SetAttributeStep:
    """A setAttribute node."""

    id: str
    name: str
    value: Template
    next: str


@dataclass(frozen=True, slots=True)
class QueueStep:
    """A queue node (terminal)."""

    id: str
    queue: str
    priority: int
    priority_attribute: str | None
    skills: tuple[SkillNeed, ...]


@dataclass(frozen=True, slots=True)
class VoicemailStep:
    """A voicemail node (terminal)."""

    id: str
    mailbox: str
    greeting: PromptTemplate | None


@dataclass(frozen=True, slots=True)
class CallbackStep:
    """A callback node (terminal)."""

    id: str
    queue: str
    prompt: PromptTemplate | None


@dataclass(frozen=True, slots=True)
class TransferStep:
    """A transfer node (terminal)."""

    id: str
    destination: str


@dataclass(frozen=True, slots=True)
class HangupStep:
    """A hangup node (terminal)."""

    id: str
    prompt: PromptTemplate | None
    cause: str


Step = (
    PlayStep
    | SayStep
    | MenuStep
    | CollectStep
    | ConditionStep
    | LookupStep
    | SetAttributeStep
    | QueueStep
    | VoicemailStep
    | CallbackStep
    | TransferStep
    | HangupStep
)
"""Any compiled node."""


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """A flow ready to run: its nodes indexed by id.

    Attributes:
        name: the flow's name (for messages).
        entry: the first node.
        on_error: the node a failed step leads to, None to hang up.
        nodes: node id -> compiled node.
        caller_id_number: caller ID for transfers out of the flow.
        max_steps: most nodes one call may enter before the engine hangs up (loop guard).
        max_errors: most failed steps one call may have before the engine hangs up.
    """

    name: str
    entry: str
    on_error: str | None
    nodes: Mapping[str, Step]
    caller_id_number: str | None
    max_steps: int
    max_errors: int

    def successors(self, node_id: str) -> frozenset[str]:
        """Nodes reachable from ``node_id`` in one step (onError included)."""
        targets = set(_targets(self.nodes[node_id]))
        if self.on_error is not None:
            targets.add(self.on_error)
        return frozenset(targets)


def _targets(step: Step) -> tuple[str, ...]:
    match step:
        case PlayStep() | SayStep() | SetAttributeStep():
            return (step.next,)
        case MenuStep():
            extra = (step.invalid_target, step.timeout_target)
            return (*step.options.values(), *(t for t in extra if t is not None))
        case CollectStep():
            return (step.next, *((step.invalid_target,) if step.invalid_target else ()))
        case ConditionStep():
            return (step.if_true, step.if_false)
        case LookupStep():
            return (step.next, step.not_found)
        case _:
            return ()


_SAY_CHECKS = {
    "number": re.compile(r"^-?[0-9]+(\.[0-9]+)?$"),
    "digits": re.compile(r"^[0-9*#]+$"),
    "currency": re.compile(r"^-?[0-9]+(\.[0-9]{1,2})?$"),
}


class _Compiler:
    """Builds compiled nodes, collecting every problem rather than stopping at the first."""

    def __init__(
        self, spec: IVRFlowSpec, schedules: Mapping[str, Schedule], time_zone: str
    ) -> None:
        self.spec = spec
        self.schedules = schedules
        self.time_zone = time_zone
        self.ids = {node.id for node in spec.nodes}
        self.problems: list[str] = []
        self.hours: dict[str, BusinessHours] = {}

    def ref(self, field: str, target: str | None) -> None:
        if target is not None and target not in self.ids:
            self.problems.append(
                f"{field}: no node {target!r} in the flow; use one of {sorted(self.ids)}"
            )

    def prompt(self, prompt: Prompt, field: str) -> PromptTemplate:
        if (prompt.file is None) == (prompt.text is None):
            self.problems.append(f"{field}: set exactly one of file or text")
        return PromptTemplate.from_api(prompt, self.spec.language)

    def template(self, source: str, field: str) -> Template:
        template = Template.parse(source)
        if "{{" in "".join(template.parts[0::2]):
            self.problems.append(
                f"{field}: {source!r} has a malformed placeholder; write {{{{name}}}} with an attribute name"
            )
        return template

    def schedule(self, name: str, field: str) -> BusinessHours | None:
        if name in self.hours:
            return self.hours[name]
        schedule = self.schedules.get(name)
        if schedule is None:
            self.problems.append(
                f"{field}: no schedule {name!r} in the ContactCenter's spec.schedules"
                f" (has {sorted(self.schedules)}); add it there or fix the name"
            )
            return None
        try:
            hours = BusinessHours.from_schedule(schedule, self.time_zone, f"schedules[{name}]")
        except ScheduleError as exc:
            self.problems.append(str(exc))
            return None
        self.hours[name] = hours
        return hours

    def node(self, index: int, node: Node) -> Step | None:
        where = f"spec.nodes[{index}]"
        settings = {
            NodeType.play: node.play,
            NodeType.say: node.say,
            NodeType.menu: node.menu,
            NodeType.collect: node.collect,
            NodeType.condition: node.condition,
            NodeType.crm_lookup: node.crm_lookup,
            NodeType.set_attribute: node.set_attribute,
            NodeType.queue: node.queue,
            NodeType.voicemail: node.voicemail,
            NodeType.callback: node.callback,
            NodeType.transfer: node.transfer,
            NodeType.hangup: node.hangup,
        }
        others = [t.value for t, s in settings.items() if s is not None and t != node.type]
        if others:
            self.problems.append(
                f"{where}: type {node.type.value} takes only {node.type.value}: settings, remove {others}"
            )
        field = f"{where}.{node.type.value}"
        match node.type:
            case NodeType.play if node.play is not None:
                p = node.play
                self.ref(f"{field}.next", p.next)
                return PlayStep(node.id, self.prompt(p.prompt, f"{field}.prompt"), p.next)
            case NodeType.say if node.say is not None:
                s = node.say
                self.ref(f"{field}.next", s.next)
                return SayStep(
                    node.id,
                    self.template(s.value, f"{field}.value"),
                    s.kind.value,
                    s.language,
                    _SAY_CHECKS.get(s.kind.value),
                    s.next,
                )
            case NodeType.menu if node.menu is not None:
                m = node.menu
                options: dict[str, str] = {}
                for i, option in enumerate(m.options):
                    self.ref(f"{field}.options[{i}].target", option.target)
                    if option.digit in options:
                        self.problems.append(
                            f"{field}.options[{i}].digit: {option.digit!r} appears twice; each key once"
                        )
                    options[option.digit] = option.target
                self.ref(f"{field}.invalidTarget", m.invalid_target)
                self.ref(f"{field}.timeoutTarget", m.timeout_target)
                keys = "".join(re.escape(d) for d in sorted(options))
                return MenuStep(
                    id=node.id,
                    prompt=self.prompt(m.prompt, f"{field}.prompt"),
                    options=MappingProxyType(options),
                    regex=f"^[{keys}]$",
                    timeout=float(m.timeout_seconds),
                    attempts=m.retries,
                    invalid_prompt=(
                        self.prompt(m.invalid_prompt, f"{field}.invalidPrompt")
                        if m.invalid_prompt is not None
                        else None
                    ),
                    invalid_target=m.invalid_target,
                    timeout_target=m.timeout_target,
                )
            case NodeType.collect if node.collect is not None:
                c = node.collect
                self.ref(f"{field}.next", c.next)
                self.ref(f"{field}.invalidTarget", c.invalid_target)
                if c.max_digits < c.min_digits:
                    self.problems.append(
                        f"{field}.maxDigits: {c.max_digits} is below minDigits {c.min_digits}"
                    )
                if c.attribute in RESERVED_NAMES:
                    self.problems.append(
                        f"{field}.attribute: {c.attribute!r} is the call's own; choose another name"
                    )
                try:
                    pattern = re.compile(c.regex)
                except re.error as exc:
                    self.problems.append(f"{field}.regex: {c.regex!r} does not compile ({exc})")
                    pattern = re.compile(r"^[0-9]+$")
                return CollectStep(
                    id=node.id,
                    prompt=self.prompt(c.prompt, f"{field}.prompt"),
                    attribute=c.attribute,
                    min_digits=c.min_digits,
                    max_digits=c.max_digits,
                    terminator=c.terminator,
                    timeout=float(c.timeout_seconds),
                    attempts=c.retries,
                    pattern=pattern,
                    next=c.next,
                    invalid_target=c.invalid_target,
                )
            case NodeType.condition if node.condition is not None:
                cond = node.condition
                self.ref(f"{field}.ifTrue", cond.if_true)
                self.ref(f"{field}.ifFalse", cond.if_false)
                if (cond.schedule is None) == (cond.expression is None):
                    self.problems.append(f"{field}: set exactly one of schedule or expression")
                    return None
                hours = expression = None
                if cond.schedule is not None:
                    hours = self.schedule(cond.schedule, f"{field}.schedule")
                else:
                    assert cond.expression is not None
                    try:
                        expression = CelExpression(cond.expression)
                    except ExpressionSyntaxError as exc:
                        self.problems.append(f"{field}.expression: not valid CEL: {exc}")
                if hours is None and expression is None:
                    return None
                return ConditionStep(node.id, hours, expression, cond.if_true, cond.if_false)
            case NodeType.crm_lookup if node.crm_lookup is not None:
                lk = node.crm_lookup
                self.ref(f"{field}.next", lk.next)
                self.ref(f"{field}.notFound", lk.not_found)
                return LookupStep(
                    node.id,
                    self.template(lk.key, f"{field}.key"),
                    lk.timeout_ms / 1000.0,
                    lk.next,
                    lk.not_found or lk.next,
                )
            case NodeType.set_attribute if node.set_attribute is not None:
                sa = node.set_attribute
                self.ref(f"{field}.next", sa.next)
                if sa.name in RESERVED_NAMES:
                    self.problems.append(
                        f"{field}.name: {sa.name!r} is the call's own and cannot be set; choose another name"
                    )
                return SetAttributeStep(
                    node.id, sa.name, self.template(sa.value, f"{field}.value"), sa.next
                )
            case NodeType.queue if node.queue is not None:
                q = node.queue
                skills = tuple(SkillNeed(s.name, s.min_level) for s in q.skills)
                return QueueStep(node.id, q.queue, q.priority, q.priority_attribute, skills)
            case NodeType.voicemail if node.voicemail is not None:
                v = node.voicemail
                greeting = (
                    self.prompt(v.greeting, f"{field}.greeting") if v.greeting is not None else None
                )
                return VoicemailStep(node.id, v.mailbox, greeting)
            case NodeType.callback if node.callback is not None:
                cb = node.callback
                prompt = self.prompt(cb.prompt, f"{field}.prompt") if cb.prompt else None
                return CallbackStep(node.id, cb.queue, prompt)
            case NodeType.transfer if node.transfer is not None:
                return TransferStep(node.id, node.transfer.destination)
            case NodeType.hangup if node.hangup is not None:
                h = node.hangup
                prompt = self.prompt(h.prompt, f"{field}.prompt") if h.prompt else None
                return HangupStep(node.id, prompt, h.cause)
        self.problems.append(
            f"{where}: type {node.type.value} needs its settings under {node.type.value}:"
        )
        return None


def compile_flow(
    flow: IVRFlow | IVRFlowSpec,
    schedules: Iterable[Schedule] = (),
    time_zone: str = "UTC",
    *,
    max_steps: int = 500,
    max_errors: int = 8,
) -> CompiledFlow:
    """Check ``flow`` and compile it for :class:`~callmesh.ivr.session.IvrSession`.

    Args:
        flow: the IVRFlow (or its spec).
        schedules: the ContactCenter's ``spec.schedules`` that conditions may name.
        time_zone: the ContactCenter's ``spec.timeZone``, for schedules without their own.
        max_steps: most nodes one call may enter (a loop guard; the call hangs up past it).
        max_errors: most failed steps one call may have before it hangs up.

    Raises:
        FlowError: the flow names a missing node or schedule, or holds an invalid regex,
            CEL expression, template or time zone; the message names each field.
    """
    if isinstance(flow, IVRFlow):
        spec, name = flow.spec, f"{flow.namespace}/{flow.name}"
    else:
        spec, name = flow, "(spec)"
    by_name: dict[str, Schedule] = {}
    for schedule in schedules:
        by_name.setdefault(schedule.name, schedule)
    compiler = _Compiler(spec, by_name, time_zone)
    nodes: dict[str, Step] = {}
    for index, node in enumerate(spec.nodes):
        if node.id in nodes:
            compiler.problems.append(
                f"spec.nodes[{index}].id: {node.id!r} is used twice; node ids must be unique"
            )
            continue
        step = compiler.node(index, node)
        if step is not None:
            nodes[node.id] = step
    compiler.ref("spec.entry", spec.entry)
    compiler.ref("spec.onError", spec.on_error)
    if max_steps < 1 or max_errors < 1:
        compiler.problems.append("max_steps and max_errors must be at least 1")
    if compiler.problems:
        raise FlowError(name, compiler.problems)
    return CompiledFlow(
        name=name,
        entry=spec.entry,
        on_error=spec.on_error,
        nodes=MappingProxyType(nodes),
        caller_id_number=spec.caller_id_number,
        max_steps=max_steps,
        max_errors=max_errors,
    )
