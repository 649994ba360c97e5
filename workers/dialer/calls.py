"""The dialer's FreeSWITCH vocabulary: effects to command lines, results to outcomes. Pure.

* ``Dial`` -> ``originate {vars}sofia/gateway/<trunk>/<number> &park()``: the campaign's
  caller ID (``origination_caller_id_number``/``_name``), ring timeout
  (``originate_timeout``), our own ``origination_uuid`` and the campaign's variables
  (``callmesh_campaign``, ``callmesh_attempt``, ``callmesh_contact``, and each contact
  attribute as ``callmesh_attr_<name>`` for the agent's screen pop). The ``{...}`` block is
  :func:`~callmesh.workers.esl.quoting.var_block`: every value reads back exactly as given
  (commas, quotes, spaces, ``=`` and ``${`` included), a line break is refused (the contact
  list parser already skips such rows) and braces or ``:_:``, which nothing can quote through
  originate, are dropped from the caller-ID name and the contact attributes.
* The ``BACKGROUND_JOB`` of that originate: ``+OK <uuid>`` is an answer; ``-ERR <cause>`` is
  a hangup cause, mapped to busy, no answer or failure (:func:`outcome_of_cause`).
* Answering-machine detection (mod_amd's ``amd`` application) leaves ``amd_result``
  (``HUMAN``, ``MACHINE`` or ``NOTSURE``) on the channel: only ``MACHINE`` is a machine.
* ``Connect``, ``SafeHarbour`` and ``LeaveMessage`` move the answered call with
  ``uuid_transfer <uuid> '<app:arg,...>' inline`` (an inline dialplan), so whatever runs
  the call (the park, or callcontrol's socket while it waits for an agent) stops and the
  new steps run; ``HangupCall`` is ``uuid_kill``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from callmesh.workers.esl.quoting import ENTERPRISE_DELIM, strip_unrepresentable, token, var_block

from callmesh.api.base import Prompt
from callmesh.dialer.campaign import Dial, Outcome

__all__ = [
    "AMD_VARIABLE",
    "BUSY_CAUSES",
    "DIAL_STRING",
    "NO_ANSWER_CAUSES",
    "connect_transfer",
    "message_transfer",
    "originate_command",
    "outcome_of_amd",
    "outcome_of_cause",
    "parse_originate_result",
    "prompt_app",
]

AMD_VARIABLE = "amd_result"
"""Channel variable mod_amd's ``amd`` application sets: HUMAN, MACHINE or NOTSURE."""

BUSY_CAUSES = frozenset({"USER_BUSY"})
"""Hangup causes that mean the line was busy (retried by the ``busy`` rule)."""

NO_ANSWER_CAUSES = frozenset(
    {"NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT", "SUBSCRIBER_ABSENT", "ORIGINATOR_CANCEL"}
)
"""Hangup causes that mean nobody picked up (retried by the ``noAnswer`` rule)."""

_SAFE_VALUE = re.compile(r"[^A-Za-z0-9_.+@:/-]")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_]")


def _value(text: str) -> str:
    """A value safe inside an inline dialplan (``uuid_transfer ... inline``).

    Commas separate the steps, spaces end the argument and quotes nest badly, so anything
    outside a conservative set becomes ``_`` (queue names, attempt ids and file names only).
    """
    return _SAFE_VALUE.sub("_", text)[:200]


DIAL_STRING = "sofia/gateway/{trunk}/{number}"
"""How a number is dialled: through the center's trunk (a sofia gateway of that name)."""


def originate_command(
    dial: Dial,
    trunk: str,
    extra: Mapping[str, str] | None = None,
    *,
    call_uuid: str,
    dial_string: str = DIAL_STRING,
) -> str:
    """The ``originate`` command line (without ``bgapi``) for one ``Dial`` effect.

    ``dial_string`` is a template with ``{trunk}`` and ``{number}`` (E.164 with its ``+``),
    e.g. ``sofia/external/{number}@sip.carrier.example`` for a carrier without a gateway.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", trunk):
        raise ValueError(f"trunk {trunk!r}: a gateway name is letters, digits, '.', '_' or '-'")
    number = dial.contact.phone
    if not re.fullmatch(r"\+[0-9]{7,15}", number):
        raise ValueError(f"number {number!r} is not E.164: the contact list parser lets none by")
    variables = {
        "origination_uuid": token(call_uuid, "call uuid"),
        "origination_caller_id_number": token(dial.caller_id_number, "spec.callerId.number"),
        "origination_caller_id_name": strip_unrepresentable(
            dial.caller_id_name or dial.caller_id_number
        ),
        "originate_timeout": str(dial.timeout_seconds),
        "ignore_early_media": "true",
        **dict(dial.variables),
        **{
            f"callmesh_attr_{_SAFE_NAME.sub('_', k)}": strip_unrepresentable(v)
            for k, v in dial.contact.attributes.items()
        },
        **dict(extra or {}),
    }
    target = dial_string.format(trunk=trunk, number=number)
    if re.search(r"[\s{},']", target) or ENTERPRISE_DELIM in target:
        raise ValueError(f"dial string {target!r} has a space, brace, comma, quote or ':_:'")
    return f"originate {var_block(variables)}{target} &park()"


def parse_originate_result(body: str) -> tuple[str | None, str | None]:
    """``(uuid, None)`` for ``+OK <uuid>``, ``(None, cause)`` for ``-ERR <cause>``."""
    text = body.strip()
    if text.startswith("+OK"):
        return text.removeprefix("+OK").strip() or None, None
    cause = text.removeprefix("-ERR").removeprefix("-USAGE").strip().split()[:1]
    return None, (cause[0] if cause else "UNKNOWN")


def outcome_of_cause(cause: str) -> Outcome:
    """A failed originate's hangup cause as the campaign's outcome."""
    if cause in BUSY_CAUSES:
        return Outcome.BUSY
    if cause in NO_ANSWER_CAUSES:
        return Outcome.NO_ANSWER
    return Outcome.FAILED


def outcome_of_amd(value: str | None) -> Outcome:
    """mod_amd's verdict: MACHINE is a machine; HUMAN, NOTSURE or nothing is a person.

    NOTSURE counts as a person on purpose: hanging up on a person is an abandoned call,
    talking to a machine only costs an agent a few seconds.
    """
    return Outcome.MACHINE if (value or "").strip().upper() == "MACHINE" else Outcome.HUMAN


def prompt_app(prompt: Prompt, tts_engine: str = "flite", tts_voice: str = "kal") -> str:
    """``playback:<file>`` or ``speak:<engine>|<voice>|<text>`` for an inline dialplan."""
    if prompt.file is not None:
        return f"playback:{_value(prompt.file)}"
    text = re.sub(r"[,'|\s]+", " ", prompt.text or "").strip()
    return f"speak:{tts_engine}|{tts_voice}|{text}"


def connect_transfer(uuid: str, queue: str, callcontrol: str, attempt_id: str) -> str:
    """``uuid_transfer`` of an answered call into callcontrol's socket, for ``queue``."""
    steps = ",".join(
        (
            f"set:callmesh_queue={_value(queue)}",
            f"set:callmesh_attempt={_value(attempt_id)}",
            f"socket:{callcontrol} async full",
        )
    )
    return f"uuid_transfer {uuid} '{steps}' inline"


def message_transfer(uuid: str, prompt: Prompt | None, *, tts_engine: str = "flite") -> str:
    """``uuid_transfer`` to play ``prompt`` (if any) and hang up (safe harbour, machine)."""
    steps = [prompt_app(prompt, tts_engine)] if prompt is not None else []
    steps.append("hangup:NORMAL_CLEARING")
    return f"uuid_transfer {uuid} '{','.join(steps)}' inline"
