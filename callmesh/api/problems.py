"""A problem found in a manifest: where it is, what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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


#: Machine-readable problem codes (CamelCase, usable as a Kubernetes condition reason).
INVALID_SPEC = "InvalidSpec"
"""A field is wrong on its own: schema, CEL rule, or a semantic check of one object."""
INVALID_YAML = "InvalidYAML"
"""The text is not YAML, or a document is not an object."""
DUPLICATE = "DuplicateObject"
"""Two objects (or two agents, extensions, ContactCenters) that must be unique are not."""
#: A reference to an object that does not exist, by the referenced kind.
NOT_FOUND = {
    "AgentTeam": "TeamNotFound",
    "Queue": "QueueNotFound",
    "IVRFlow": "FlowNotFound",
    "ContactCenter": "ContactCenterNotFound",
    "DialerCampaign": "CampaignNotFound",
}


def not_found_code(kind: str) -> str:
    """The code of a dangling reference to ``kind``, e.g. ``TeamNotFound``."""
    return NOT_FOUND.get(kind, f"{kind}NotFound")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one object.

    ``message`` reads "what is wrong — how to fix it". ``kind``/``name`` are empty when the
    document is not a recognisable object (a YAML syntax error, a list at the top level);
    ``path`` is empty for problems with the document as a whole.

    ``code`` says what kind of problem it is, for programs (the operator uses it as a
    condition reason; ``--output json`` carries it); ``target`` is the ``(kind, name)`` a
    dangling reference points at. Neither is part of the printed output, nor of equality.
    """

    file: str
    line: int
    kind: str
    name: str
    path: str
    message: str
    code: str = field(default=INVALID_SPEC, compare=False)
    target: tuple[str, str] | None = field(default=None, compare=False)

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
        """The JSON form: file, line, kind, name, path, message and code."""
        return {
            "file": self.file,
            "line": self.line,
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            "message": self.message,
            "code": self.code,
        }
