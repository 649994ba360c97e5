"""Encode commands sent to FreeSWITCH (client -> server bytes). Pure: no I/O.

Every command is a line, optional ``Name: value`` headers, an empty line, and an optional
body announced by ``Content-Length``. A command line or header containing a newline would
inject a second command, so it is refused with a :class:`ValueError` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from callmesh.workers.esl.events import FORMATS

MAX_HEADER_ARG: Final = 2048
"""Longer ``execute-app-arg`` values go in a ``text/plain`` body, as mod_event_socket allows."""


def _check(value: str, field: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"{field} {value[:60]!r} contains a newline; ESL commands are one line")
    return value


def encode_command(
    line: str, headers: Mapping[str, str] | None = None, body: bytes | None = None
) -> bytes:
    """``line\\n[Name: value\\n...]\\n[body]`` with ``Content-Length`` added for a body."""
    _check(line, "command")
    if not line.strip():
        raise ValueError("command is empty: give a command such as 'api status'")
    parts = [line, "\n"]
    for name, value in (headers or {}).items():
        _check(name, "header name")
        _check(value, f"header {name}")
        if not name or ":" in name:
            raise ValueError(f"header name {name!r} must be non-empty and without ':'")
        parts += [name, ": ", value, "\n"]
    if body:
        parts += ["Content-Length: ", str(len(body)), "\n"]
    parts.append("\n")
    encoded = "".join(parts).encode("utf-8")
    return encoded + body if body else encoded


def auth(password: str) -> bytes:
    """``auth <password>``."""
    return encode_command(f"auth {_check(password, 'password')}")


def api(command: str) -> bytes:
    """``api <command>``: run an API function and wait for its output."""
    return encode_command(f"api {command}")


def bgapi(command: str, job_uuid: str) -> bytes:
    """``bgapi <command>`` with a client-chosen ``Job-UUID`` (FreeSWITCH honours it)."""
    return encode_command(f"bgapi {command}", {"Job-UUID": job_uuid})


def event(fmt: str, names: list[str]) -> bytes:
    """``event <plain|json|xml> <names...>`` (``CUSTOM`` subclasses follow ``CUSTOM``)."""
    if fmt not in FORMATS:
        raise ValueError(f"event format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not names:
        raise ValueError("event subscription needs at least one event name (or ALL)")
    return encode_command(f"event {fmt} {' '.join(names)}")


def event_names(names: Iterable[str]) -> list[str]:
    """Order names for ``event``: event names, then ``CUSTOM`` and the subclasses after it
    (``sofia::register``); FreeSWITCH reads every word after ``CUSTOM`` as a subclass."""
    wanted = set(names)
    subclasses = sorted(n for n in wanted if "::" in n)
    plain = sorted(n for n in wanted if "::" not in n and n != "CUSTOM")
    if subclasses or "CUSTOM" in wanted:
        return [*plain, "CUSTOM", *subclasses]
    return plain


def filter_add(header: str, value: str) -> bytes:
    """``filter <header> <value>``: only deliver events whose header has that value."""
    return encode_command(f"filter {header} {value}")


def filter_delete(header: str, value: str | None = None) -> bytes:
    """``filter delete <header> [value]``."""
    return encode_command(f"filter delete {header}" + (f" {value}" if value else ""))


def sendmsg(
    call_command: str,
    uuid: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """``sendmsg [uuid]`` with ``call-command`` and extra headers (execute, hangup, ...)."""
    line = "sendmsg" + (f" {uuid}" if uuid else "")
    all_headers = {"call-command": call_command, **(headers or {})}
    return encode_command(line, all_headers, body)


def execute(
    app: str,
    arg: str | None = None,
    *,
    uuid: str | None = None,
    event_lock: bool = False,
    event_uuid: str | None = None,
    loops: int = 1,
) -> bytes:
    """``sendmsg`` ``execute`` of dialplan application ``app``.

    ``event_uuid`` comes back as ``Application-UUID`` on CHANNEL_EXECUTE and
    CHANNEL_EXECUTE_COMPLETE, which is how a caller waits for *this* execution to finish.
    An argument with a newline or longer than :data:`MAX_HEADER_ARG` goes in the body.
    """
    if not app or " " in app:
        raise ValueError(f"application name {app!r} must be one word such as 'playback'")
    headers = {"execute-app-name": app}
    body = None
    if arg is not None:
        if "\n" in arg or len(arg) > MAX_HEADER_ARG:
            body = arg.encode("utf-8")
            headers["content-type"] = "text/plain"
        else:
            headers["execute-app-arg"] = arg
    if loops != 1:
        headers["loops"] = str(loops)
    if event_lock:
        headers["event-lock"] = "true"
    if event_uuid:
        headers["Event-UUID"] = event_uuid
    return sendmsg("execute", uuid, headers, body)


def hangup(cause: str = "NORMAL_CLEARING", *, uuid: str | None = None) -> bytes:
    """``sendmsg`` ``hangup`` with ``hangup-cause``."""
    return sendmsg("hangup", uuid, {"hangup-cause": cause})
