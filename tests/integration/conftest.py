"""Integration fixtures: the FreeSWITCH test peer (``tests/esl_peer``) bound to port 0.

``esl_peer`` yields a started :class:`esl_peer.peer.FakeFreeSwitch` (inbound ESL on
127.0.0.1:<port>, password ``ClueCon``, instant media time); other tests import the package
directly (``from esl_peer.peer import FakeFreeSwitch``) once this conftest put ``tests/`` on
``sys.path``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

from esl_peer.peer import FakeFreeSwitch  # noqa: E402


@pytest.fixture
async def esl_peer() -> AsyncIterator[FakeFreeSwitch]:
    """A started test FreeSWITCH on 127.0.0.1:0 (``esl_peer.port``), stopped afterwards."""
    peer = FakeFreeSwitch()
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()
