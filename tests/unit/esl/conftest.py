"""Make the shared ESL test doubles (``tests/fakes``) importable as ``fakes.*``."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
