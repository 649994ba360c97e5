"""Reading manifests: files or folders of multi-document YAML, with a line for every field.

YAML is read the way ``kubectl`` reads it (YAML 1.1 through go-yaml), not the way PyYAML
would on its own: an unquoted date (``2026-12-25``) or time (``10:30``) stays the string the
user wrote instead of becoming a ``date`` or the base-60 integer 630. Duplicate keys, which
PyYAML silently resolves to the last one, are reported. Every document keeps a map from each
field's path to the line it is written on, so a problem can point at the field itself.

This module takes text; reading files and folders is :mod:`callmesh.api.commands`' job, and
the checks themselves (:mod:`callmesh.api.validate`) take data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from callmesh.api.problems import INVALID_YAML, PathKey, Problem, format_path

#: File name endings read from folders.
SUFFIXES = (".yaml", ".yml", ".json")
#: Guards against alias bombs and absurd nesting: documents beyond these are refused.
MAX_NODES = 200_000
MAX_DEPTH = 64


@dataclass(frozen=True)
class Document:
    """One YAML document: its data, where it came from, and the line of each field."""

    data: Any
    file: str = "<input>"
    line: int = 1
    index: int = 0
    lines: Mapping[PathKey, int] = field(default_factory=dict)
    #: Problems found while reading (duplicate keys): the object is not checked further.
    problems: tuple[Problem, ...] = ()

    def line_of(self, path: Iterable[str | int]) -> int:
        """The line of ``path``, or of its nearest written ancestor (for a missing field)."""
        parts = tuple(path)
        for end in range(len(parts), 0, -1):
            found = self.lines.get(parts[:end])
            if found is not None:
                return found
        return self.line


class _Loader(yaml.SafeLoader):
    """SafeLoader with kubectl's scalars: timestamps and base-60 numbers stay strings."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        return self.construct_scalar(node)  # type: ignore[arg-type]

    def construct_yaml_int(self, node: yaml.Node) -> Any:
        text = self.construct_scalar(node)  # type: ignore[arg-type]
        if isinstance(text, str) and ":" in text:
            return text
        return super().construct_yaml_int(node)  # type: ignore[arg-type]

    def construct_yaml_float(self, node: yaml.Node) -> Any:
        text = self.construct_scalar(node)  # type: ignore[arg-type]
        if isinstance(text, str) and ":" in text:
            return text
        return super().construct_yaml_float(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)


class _TooBig(Exception):
    """A document over MAX_NODES or MAX_DEPTH, or with a recursive alias."""


def _walk(
    node: yaml.Node,
    path: PathKey,
    lines: dict[PathKey, int],
    dupes: list[tuple[PathKey, int, int]],
    stack: set[int],
    count: list[int],
) -> None:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise _TooBig(f"more than {MAX_NODES} values (an alias bomb?)")
    if len(path) > MAX_DEPTH:
        raise _TooBig(f"nested deeper than {MAX_DEPTH} levels")
    if id(node) in stack:
        raise _TooBig("an alias refers to itself (a recursive structure)")
    if isinstance(node, yaml.MappingNode):
        stack.add(id(node))
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else f"<{key.tag}>"
            line = key.start_mark.line + 1
            if name == "<<" and key.tag == "tag:yaml.org,2002:merge":
                _walk(value, path, lines, dupes, stack, count)
                continue
            if name in seen:
                dupes.append(((*path, name), line, seen[name]))
            seen[name] = line
            lines[(*path, name)] = line
            _walk(value, (*path, name), lines, dupes, stack, count)
        stack.discard(id(node))
    elif isinstance(node, yaml.SequenceNode):
        stack.add(id(node))
        for i, item in enumerate(node.value):
            lines.setdefault((*path, i), item.start_mark.line + 1)
            _walk(item, (*path, i), lines, dupes, stack, count)
        stack.discard(id(node))


def _problem(file: str, line: int, path: PathKey, message: str) -> Problem:
    return Problem(file, line, "", "", format_path(path), message, INVALID_YAML)


def parse_yaml(text: str, file: str = "<input>") -> tuple[list[Document], list[Problem]]:
    """Split ``text`` into documents (empty ones skipped); YAML errors become problems.

    Parsing stops at a syntax error: the documents before it are returned.
    """
    docs: list[Document] = []
    problems: list[Problem] = []
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters up front
        return docs, [_problem(file, 1, (), f"YAML error: {exc} — remove the character")]
    index = 0
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                line = mark.line + 1 if mark else 1
                what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
                problems.append(
                    _problem(file, line, (), f"YAML syntax error: {what} — fix the YAML there")
                )
                break
            except yaml.YAMLError as exc:
                problems.append(_problem(file, 1, (), f"YAML error: {exc} — fix the YAML"))
                break
            except RecursionError:
                problems.append(
                    _problem(file, 1, (), "YAML nested too deeply — flatten the document")
                )
                break
            if node is None:
                break
            start = node.start_mark.line + 1
            lines: dict[PathKey, int] = {}
            dupes: list[tuple[PathKey, int, int]] = []
            try:
                _walk(node, (), lines, dupes, set(), [0])
            except _TooBig as exc:
                problems.append(_problem(file, start, (), f"document refused: {exc} — simplify it"))
                index += 1
                continue
            try:
                data = loader.construct_document(node)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                line = mark.line + 1 if mark else start
                problems.append(
                    _problem(
                        file, line, (), f"YAML error: {exc} — use plain mappings, lists and scalars"
                    )
                )
                index += 1
                continue
            except (RecursionError, TypeError, ValueError) as exc:
                problems.append(
                    _problem(file, start, (), f"YAML value cannot be read: {exc} — fix the value")
                )
                index += 1
                continue
            duplicates = tuple(
                _problem(
                    file,
                    line,
                    path,
                    f"duplicate key (first written on line {first}); kubectl rejects it — "
                    "keep one of the two",
                )
                for path, line, first in dupes
            )
            if data is not None:
                docs.append(Document(data, file, start, index, lines, duplicates))
            else:
                problems.extend(duplicates)
            index += 1
    finally:
        loader.dispose()
    return docs, problems
