"""The HTTP/JSON CRM connector against a real HTTP server on loopback."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.errors import PluginConfigError
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.testkit import _interaction
from callmesh.plugins.types import CallerQuery

SECRET = "s3cr3t-token-value"


class FakeCRM:
    """Scripted answers by caller number; records what it received."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.fail_first = 0


def handler_for(crm: FakeCRM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the client gave up (slow case)
                self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            crm.requests.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
            self._reply(201, b"{}")

        def do_GET(self) -> None:
            crm.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
            phone = self.path.rsplit("=", 1)[-1]
            if phone == "%2B15550001":  # known
                if crm.fail_first:
                    crm.fail_first -= 1
                    return self._reply(503, b'{"error": "busy"}')
                doc = {
                    "data": {"id": 42, "name": "Ada Lovelace", "tier": "vip", "recent": ["refund"]}
                }
                return self._reply(200, json.dumps(doc).encode())
            if phone == "%2B15550002":  # slow
                crm.release.wait(10)
                return self._reply(200, b'{"data": {"name": "late"}}')
            if phone == "%2B15550003":
                return self._reply(500, b"oops")
            if phone == "%2B15550004":
                return self._reply(200, b'{"data": {"name": "Ada"')
            return self._reply(404, b"{}")

    return Handler


@pytest.fixture
def crm() -> Iterator[tuple[FakeCRM, int]]:
    fake = FakeCRM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake, server.server_address[1]
    fake.release.set()
    server.shutdown()
    server.server_close()


def make_manager(port: int, secret_file: Path, **extra: Any) -> PluginManager:
    config = {
        "url": f"http://127.0.0.1:{port}/customers?phone={{ani}}",
        "auth_value_file": str(secret_file),
        "auth_prefix": "Bearer ",
        "fields": {
            "display_name": "data.name",
            "customer_id": "data.id",
            "history": "data.recent",
            "attributes.tier": "data.tier",
        },
        "record_url": f"http://127.0.0.1:{port}/interactions",
        "timeout_seconds": 0.3,
        **extra,
    }
    return PluginManager(
        [{"name": "http-crm", "config": config}], catalog=PluginCatalog(environ={}, entry_points=[])
    )


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    return path


async def test_known_caller_is_mapped_with_the_secret_header(
    crm: tuple[FakeCRM, int], secret_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, port = crm
    manager = make_manager(port, secret_file)
    try:
        record = await manager.lookup_caller(CallerQuery("c1", "voice", "+15550001"))
        assert record.found and record.display_name == "Ada Lovelace"
        assert record.customer_id == "42" and dict(record.attributes) == {"tier": "vip"}
        assert record.history == ("refund",) and record.source == "http-crm"
        assert fake.requests[0]["auth"] == f"Bearer {SECRET}"
        assert await manager.record_interaction(_interaction()) == 1
        posted = fake.requests[-1]
        assert posted["path"] == "/interactions" and posted["body"]["id"] == "contact-1"
        assert SECRET not in caplog.text
    finally:
        await manager.aclose()


async def test_transient_5xx_is_retried(crm: tuple[FakeCRM, int], secret_file: Path) -> None:
    fake, port = crm
    fake.fail_first = 2
    manager = make_manager(port, secret_file, attempts=3)
    try:
        record = await manager.lookup_caller(CallerQuery("c1", "voice", "+15550001"))
        assert record.found and len(fake.requests) == 3
        assert manager.failures.snapshot() == {}
    finally:
        await manager.aclose()


@pytest.mark.parametrize(
    ("ani", "budget", "reason", "detail"),
    [
        ("+15550002", 0.3, "timeout", "overran"),
        ("+15550003", 5.0, "raised", "500"),
        ("+15550004", 5.0, "raised", "malformed JSON"),
    ],
    ids=["slow", "500", "malformed-json"],
)
async def test_broken_crm_degrades_to_unknown_caller(
    crm: tuple[FakeCRM, int],
    secret_file: Path,
    caplog: pytest.LogCaptureFixture,
    ani: str,
    budget: float,
    reason: str,
    detail: str,
) -> None:
    _, port = crm
    manager = make_manager(port, secret_file, attempts=2, timeout_seconds=5)
    manager.budgets["callmesh_crm_lookup"] = budget
    try:
        record = await manager.lookup_caller(CallerQuery("c1", "voice", ani))
        assert not record.found and record.display_name == "unknown caller"
        assert manager.failures.count("http-crm", "callmesh_crm_lookup", reason) == 1
        assert "'http-crm'" in caplog.text and detail in caplog.text
        assert SECRET not in caplog.text
    finally:
        await manager.aclose()


async def test_unknown_caller_is_not_a_failure(crm: tuple[FakeCRM, int], secret_file: Path) -> None:
    _, port = crm
    manager = make_manager(port, secret_file)
    try:
        record = await manager.lookup_caller(CallerQuery("c1", "voice", "+15559999"))
        assert not record.found and manager.failures.snapshot() == {}
    finally:
        await manager.aclose()


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    catalog = PluginCatalog(environ={}, entry_points=[])
    with pytest.raises(PluginConfigError) as err:
        PluginManager(
            [
                {"name": "memory-crm"},
                {
                    "name": "http-crm",
                    "config": {"url": "ftp://x/{phone}", "fields": {"name": "x"}, "attempts": 0},
                },
            ],
            catalog=catalog,
        )
    problems = err.value.problems
    assert any(p.startswith("spec.plugins[1].config.url: ") and "http" in p for p in problems)
    assert any(p.startswith("spec.plugins[1].config.fields: ") for p in problems)
    assert any(p.startswith("spec.plugins[1].config.attempts: ") for p in problems)
    with pytest.raises(PluginConfigError, match=r"spec.plugins\[0\].config.url: .*\{phone\}"):
        PluginManager(
            [
                {
                    "name": "http-crm",
                    "config": {"url": "http://x/{phone}", "fields": {"display_name": "n"}},
                }
            ],
            catalog=catalog,
        )
    with pytest.raises(PluginConfigError, match=r"spec.plugins\[0\]: .*auth_value_file"):
        PluginManager(
            [
                {
                    "name": "http-crm",
                    "config": {
                        "url": "http://x/{ani}",
                        "fields": {"display_name": "n"},
                        "auth_value_file": str(tmp_path / "missing"),
                    },
                }
            ],
            catalog=catalog,
        )


async def test_secret_from_an_environment_variable_and_post_lookups(
    crm: tuple[FakeCRM, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, port = crm
    monkeypatch.setenv("CRM_TOKEN", SECRET)
    config = {
        "url": f"http://127.0.0.1:{port}/lookup",
        "method": "POST",
        "auth_value_env": "CRM_TOKEN",
        "auth_header": "X-Api-Key",
        "fields": {"display_name": "name"},
    }
    manager = PluginManager(
        [{"name": "http-crm", "config": config}], catalog=PluginCatalog(environ={}, entry_points=[])
    )
    try:
        record = await manager.lookup_caller(
            CallerQuery("c1", "chat", "ada@example.com", attributes={"account": "7"})
        )
        # The fake answers POSTs with {} (no name): not found, and not a failure.
        assert not record.found and manager.failures.snapshot() == {}
        body = fake.requests[-1]["body"]
        assert body["ani"] == "ada@example.com" and body["attributes"] == {"account": "7"}
    finally:
        await manager.aclose()


def test_missing_secret_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRM_TOKEN_MISSING", raising=False)
    with pytest.raises(PluginConfigError, match=r"spec.plugins\[0\]: .*CRM_TOKEN_MISSING"):
        PluginManager(
            [
                {
                    "name": "http-crm",
                    "config": {
                        "url": "http://x/{ani}",
                        "fields": {"display_name": "n"},
                        "auth_value_env": "CRM_TOKEN_MISSING",
                    },
                }
            ],
            catalog=PluginCatalog(environ={}, entry_points=[]),
        )
