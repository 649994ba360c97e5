"""Typed failures of the ESL layer.

Framing errors (:class:`EslProtocolError`) mean the byte stream can no longer be trusted and
the connection is closed; command errors (:class:`EslCommandError`) are FreeSWITCH answering
``-ERR``; connection errors fail every pending command and background job.
"""

from __future__ import annotations


class EslError(Exception):
    """Base class of every error raised by :mod:`callmesh.workers.esl`."""


class EslProtocolError(EslError):
    """The peer sent bytes that are not a valid ESL frame (or exceed the configured limits)."""


class EslCommandError(EslError):
    """FreeSWITCH answered a command with ``-ERR ...``.

    ``reply`` holds the text after ``-ERR`` so callers can branch on it
    (``No such channel!``, ``invalid``, ``command not found``).
    """

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command!r} failed: {reply}")
        self.command = command
        self.reply = reply


class EslAuthError(EslCommandError):
    """FreeSWITCH refused the event-socket password (``-ERR invalid``)."""


class EslConnectionLost(EslError):
    """The connection closed (FreeSWITCH hung up, the socket broke, or we closed it)
    while a command or background job was still waiting for its answer."""


class EslTimeout(EslError):
    """No answer arrived within the configured time; the connection is closed because a late
    reply could no longer be matched to its command."""
