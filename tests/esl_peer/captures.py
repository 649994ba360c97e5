"""Read the FreeSWITCH 1.10.12 ESL captures recorded byte for byte in ``../shared/esl``.

Each ``NN-name.jsonl`` holds one JSON object per ``recv()``/``send()`` chunk:
``{"t": s, "dir": "c2s"|"s2c", "data": text, ["conn": label], ["encoding": "base64"]}``.
The folder sits beside the repository (``<repo>/../shared/esl``); set
``CALLMESH_ESL_CAPTURES`` to read it from elsewhere.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAPTURES_DIR = Path(os.environ.get("CALLMESH_ESL_CAPTURES", REPO.parent / "shared" / "esl"))
NAMES = (
    "01-inbound-basic",
    "02a-inbound-call-events-plain",
    "02b-inbound-call-events-json",
    "03a-outbound-socket-async",
    "03b-outbound-socket-sync",
    "04-originate-bridge-kill",
)


@dataclass(frozen=True)
class Stream:
    """One direction of one TCP connection: its chunks exactly as recorded."""

    capture: str
    conn: str
    direction: str
    chunks: tuple[bytes, ...]

    @property
    def data(self) -> bytes:
        """The whole byte stream."""
        return b"".join(self.chunks)

    @property
    def label(self) -> str:
        """``capture[conn]/dir`` for test ids."""
        return f"{self.capture}[{self.conn}]/{self.direction}"


@dataclass(frozen=True)
class Capture:
    """A recorded session: streams keyed by ``(conn, dir)``; conn is ``"main"`` if unnamed."""

    name: str
    streams: dict[tuple[str, str], Stream] = field(default_factory=dict)

    def s2c(self, conn: str = "main") -> Stream:
        """FreeSWITCH -> recorder bytes of ``conn``."""
        return self.streams[(conn, "s2c")]

    def c2s(self, conn: str = "main") -> Stream:
        """Recorder -> FreeSWITCH bytes of ``conn``."""
        return self.streams[(conn, "c2s")]

    def commands(self, conn: str = "main") -> list[bytes]:
        """The recorder's commands, one ``...\\n\\n`` block each (none carries a body)."""
        data = self.c2s(conn).data
        blocks = [block + b"\n\n" for block in data.split(b"\n\n") if block]
        assert b"".join(blocks) == data, f"{self.name}: c2s stream is not whole commands"
        return blocks


def _missing() -> AssertionError:
    return AssertionError(
        f"ESL captures not found at {CAPTURES_DIR}: the tests read the recorded FreeSWITCH "
        "sessions from <repo>/../shared/esl (or set CALLMESH_ESL_CAPTURES)"
    )


@cache
def load(name: str) -> Capture:
    """Load capture ``name`` (e.g. ``"02b-inbound-call-events-json"``)."""
    path = CAPTURES_DIR / f"{name}.jsonl"
    if not path.exists():
        raise _missing()
    chunks: dict[tuple[str, str], list[bytes]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        data = row["data"]
        raw = base64.b64decode(data) if row.get("encoding") == "base64" else data.encode()
        chunks.setdefault((row.get("conn", "main"), row["dir"]), []).append(raw)
    streams = {key: Stream(name, key[0], key[1], tuple(parts)) for key, parts in chunks.items()}
    return Capture(name, streams)


def all_captures() -> list[Capture]:
    """Every capture listed in :data:`NAMES` (fails loudly if the folder is missing)."""
    if not CAPTURES_DIR.is_dir():
        raise _missing()
    on_disk = sorted(p.stem for p in CAPTURES_DIR.glob("*.jsonl"))
    assert on_disk == sorted(NAMES), f"captures changed: {on_disk}; update NAMES and the tests"
    return [load(name) for name in NAMES]


def s2c_streams() -> list[Stream]:
    """Every FreeSWITCH -> client stream of every capture."""
    return [s for c in all_captures() for (_, d), s in sorted(c.streams.items()) if d == "s2c"]
