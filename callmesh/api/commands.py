"""``callmesh validate`` and ``callmesh crds``: the resource API on the command line.

This is where the resource API meets the file system: :func:`read_documents` reads manifest
files and folders, :func:`write_crds` and :func:`drift` the CRD folder. Everything else in
:mod:`callmesh.api` takes text or data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from callmesh.api.problems import INVALID_YAML, Problem

if TYPE_CHECKING:
    from callmesh.api.loader import Document

__all__ = ["drift", "find_files", "read_documents", "register", "write_crds"]

#: File name endings read from folders.
SUFFIXES = (".yaml", ".yml", ".json")


def _problem(file: str, message: str) -> Problem:
    return Problem(file, 0, "", "", "", message, INVALID_YAML)


def find_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Files named, plus the ``*.yaml``/``*.yml``/``*.json`` files under folders (sorted)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix in SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                problems.append(_problem(str(path), "no .yaml, .yml or .json files in this folder"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(_problem(str(path), "no such file or folder — check the path"))
    return files, problems


def read_documents(paths: Iterable[str | Path]) -> tuple[list[Document], list[Problem]]:
    """Every document of every file under ``paths``, and the problems reading them."""
    from callmesh.api.loader import parse_yaml

    files, problems = find_files(paths)
    docs: list[Document] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(_problem(str(path), f"cannot read the file: {exc}"))
            continue
        found, trouble = parse_yaml(text, str(path))
        docs.extend(found)
        problems.extend(trouble)
    return docs, problems


def _existing_crds(output_dir: Path) -> dict[str, str]:
    from callmesh.api.base import GROUP

    return {p.name: p.read_text() for p in sorted(output_dir.glob(f"{GROUP}_*.yaml"))}


def write_crds(output_dir: Path) -> list[Path]:
    """Write every CRD into ``output_dir`` (created if needed); returns the paths written.

    Files of earlier kinds that no longer exist (``callmesh.io_*.yaml`` not generated now) are
    removed, so the folder always equals what the models generate.
    """
    from callmesh.api.crd import crd_files

    output_dir.mkdir(parents=True, exist_ok=True)
    wanted = crd_files()
    existing = _existing_crds(output_dir)
    for name in existing:
        if name not in wanted:
            (output_dir / name).unlink()
    written = []
    for name, text in wanted.items():
        path = output_dir / name
        if existing.get(name) != text:
            path.write_text(text)
        written.append(path)
    return written


def drift(output_dir: Path) -> list[str]:
    """File names in ``output_dir`` that differ from what the models generate (missing included)."""
    from callmesh.api.crd import stale_files

    return stale_files(_existing_crds(output_dir) if output_dir.is_dir() else {})


class Output(StrEnum):
    """Output format of ``callmesh validate``."""

    text = "text"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add ``validate`` and ``crds`` to the ``callmesh`` command."""
    app.command("validate")(validate_command)
    app.command("crds")(crds_command)


def validate_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Manifest files or folders (read recursively: *.yaml, *.yml, *.json; "
            "several objects per file separated by ---), or - for standard input.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Output,
        typer.Option(
            "--output",
            "-o",
            help="text: one line per problem, FILE:LINE KIND/NAME: field: what is wrong — "
            "how to fix it. json: a list of {file, line, kind, name, path, message}.",
        ),
    ] = Output.text,
) -> None:
    """Check manifests before they reach a cluster.

    Each callmesh.io object is checked against its CRD schema (unknown fields included) and the CRD's CEL rules; then each namespace (tenant) as a whole: IVR graphs (targets exist, every path ends, no loop without an exit), references between queues, teams, flows and schedules, skills, unique agent ids and extensions, DIDs, time zones. Objects of other API groups (ConfigMaps, Secrets) are skipped.

    Exits 0 when everything is valid, 1 when any problem is found.
    """
    import sys

    from callmesh.api.loader import parse_yaml
    from callmesh.api.validate import check

    docs, problems = read_documents(p for p in paths if str(p) != "-")
    if any(str(p) == "-" for p in paths):
        stdin_docs, stdin_problems = parse_yaml(sys.stdin.read(), "<stdin>")
        docs, problems = docs + stdin_docs, problems + stdin_problems
    found, checked = check(docs)
    problems = sorted(problems + found, key=lambda p: (p.file, p.line, p.path, p.message))
    if output == Output.json:
        typer.echo(json.dumps([p.to_dict() for p in problems], indent=2))
    else:
        for problem in problems:
            typer.echo(problem.format())
    files = len({d.file for d in docs})
    if problems:
        typer.echo(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} "
            f"in {len({p.file for p in problems})} of {max(files, 1)} file(s)",
            err=True,
        )
        raise typer.Exit(1)
    namespaces = sorted({c.obj.namespace for c in checked})
    typer.echo(
        f"ok: {len(checked)} callmesh objects in {files} file(s), "
        f"namespaces: {', '.join(namespaces) or 'none'}",
        err=True,
    )


def crds_command(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-d", help="Folder the CRD files are written to.")
    ] = Path("crds"),
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 if the folder differs from what the models generate.",
        ),
    ] = False,
) -> None:
    """Generate the CustomResourceDefinitions from the resource models.

    Writes crds/callmesh.io_<plural>.yaml for ContactCenter, Queue, AgentTeam, IVRFlow and DialerCampaign: structural schemas with descriptions (for kubectl explain), defaults, bounds and CEL rules, the status subresource, printer columns, short names and the category callmesh (kubectl get callmesh).
    """
    if check:
        stale = drift(output_dir)
        for name in stale:
            typer.echo(f"{output_dir / name}: differs from the models — run `callmesh crds`")
        if stale:
            raise typer.Exit(1)
        typer.echo(f"{output_dir}: up to date", err=True)
        return
    for path in write_crds(output_dir):
        typer.echo(str(path))
