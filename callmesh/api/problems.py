"""A problem found in a manifest: where it is, what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: A path inside an object: keys and list indexes, e.g. ("spec", "tiers", 2, "teams").
PathKey = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """``("spec", "tiers", 2, "teams")`` -> ``spec.tiers[2].teams``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one object.

    ``message`` reads "what is wrong — how to fix it". ``kind``/``name`` are empty when the
    document is not a recognisable object (a YAML syntax error, a list at the top level);
    ``path`` is empty for problems with the document as a whole.
    """

    file: str
    line: int
    kind: str
    name: str
    path: str
    message: str

    def where(self) -> str:
        """``KIND/NAME`` or, for a document that is not an object, ``document``."""
        if self.kind or self.name:
            return f"{self.kind or '?'}/{self.name or '?'}"
        return "document"

    def format(self) -> str:
        """``FILE:LINE KIND/NAME: spec.path.to[2].field: what is wrong — how to fix it``."""
        path = f" {self.path}:" if self.path else ""
        return f"{self.file}:{self.line} {self.where()}:{path} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: file, line, kind, name, path, message."""
        return asdict(self)
