"""``{{name}}`` templates filled from the call: ``ani``, ``dnis`` and any attribute.

A template is parsed once, when the flow is compiled, into literal parts and names; filling it
is a join. A name the call does not have is an error (the flow takes its onError node), never
an empty string said to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MissingAttribute", "Template"]

_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?)\s*\}\}")


class MissingAttribute(LookupError):
    """A template names an attribute the call does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template.

    Attributes:
        source: the text as written.
        parts: literal text at even positions, attribute names at odd positions.
    """

    source: str
    parts: tuple[str, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        """Split ``source`` into literals and ``{{name}}`` placeholders."""
        parts: list[str] = []
        last = 0
        for match in _PLACEHOLDER.finditer(source):
            parts.append(source[last : match.start()])
            parts.append(match.group(1))
            last = match.end()
        parts.append(source[last:])
        return cls(source=source, parts=tuple(parts))

    @property
    def names(self) -> tuple[str, ...]:
        """The attribute names the template reads."""
        return self.parts[1::2]

    def render(self, ani: str, dnis: str, attributes: Mapping[str, str]) -> str:
        """The text with every placeholder filled.

        Raises:
            MissingAttribute: a name that is neither ``ani``, ``dnis`` nor an attribute.
        """
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        out = []
        for index, part in enumerate(parts):
            if index % 2 == 0:
                out.append(part)
            elif part == "ani":
                out.append(ani)
            elif part == "dnis":
                out.append(dnis)
            else:
                value = attributes.get(part)
                if value is None:
                    raise MissingAttribute(part)
                out.append(value)
        return "".join(out)
