"""The SMTP notifier against a real SMTP server (aiosmtpd) on a loopback port chosen by the OS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.errors import PluginConfigError
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.types import ContactEvent, ContactEventKind


class Inbox:
    """An aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        self.arrived.set()
        return "250 OK"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
) -> AuthResult:
    ok = isinstance(auth, LoginPassword) and auth.login == b"callmesh" and auth.password == b"pw"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, authenticator=authenticator, auth_require_tls=False),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    yield inbox, port
    server.close()
    await server.wait_closed()


def manager_for(port: int, password_file: Path | None = None, **extra: Any) -> PluginManager:
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "sender": "center@example.com",
        "recipients": ["sup@example.com", "lead@example.com"],
        **extra,
    }
    if password_file is not None:
        config.update(username="callmesh", password_file=str(password_file))
    return PluginManager(
        [{"name": "smtp-notifier", "config": config}],
        catalog=PluginCatalog(environ={}, entry_points=[]),
    )


async def test_abandoned_call_sends_an_email(smtp: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = smtp
    secret = tmp_path / "password"
    secret.write_text("pw\n")
    manager = manager_for(port, secret)
    event = ContactEvent(
        ContactEventKind.ABANDONED, "c-7", "billing", "+15550001", 1.0, "", {"waited": "95 s"}
    )
    try:
        assert await manager.notify(event) == 1
        assert len(inbox.messages) == 1
        rcpts, message = inbox.messages[0]
        assert rcpts == ["sup@example.com", "lead@example.com"]
        assert message["Subject"] == "[callmesh] abandoned contact from +15550001 in billing"
        body = message.get_payload()
        assert "Contact: c-7" in body and "waited: 95 s" in body
        assert manager.failures.snapshot() == {}
    finally:
        await manager.aclose()


async def test_events_not_configured_send_nothing(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    manager = manager_for(port, events=["voicemail"])
    try:
        event = ContactEvent(ContactEventKind.MISSED, "c-8", "sales", "", 1.0, "agent-1")
        assert await manager.notify(event) == 1
        assert inbox.messages == []
    finally:
        await manager.aclose()


async def test_wrong_password_is_counted_not_raised(
    smtp: tuple[Inbox, int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp
    secret = tmp_path / "password"
    secret.write_text("wrong-pw")
    manager = manager_for(port, secret)
    try:
        event = ContactEvent(ContactEventKind.MISSED, "c-9", "sales", "+1", 1.0, "agent-1")
        assert await manager.notify(event) == 0
        assert manager.failures.count("smtp-notifier", "callmesh_contact_event", "raised") == 1
        assert "wrong-pw" not in caplog.text and inbox.messages == []
    finally:
        await manager.aclose()


def test_smtp_config_errors_name_the_field() -> None:
    with pytest.raises(PluginConfigError) as err:
        PluginManager(
            [
                {
                    "name": "smtp-notifier",
                    "config": {"host": "h", "sender": "nobody", "recipients": [], "events": ["x"]},
                }
            ],
            catalog=PluginCatalog(environ={}, entry_points=[]),
        )
    text = str(err.value)
    for field in ("sender", "recipients", "events[0]"):
        assert f"spec.plugins[0].config.{field}: " in text
