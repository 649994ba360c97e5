"""``callmesh validate`` and ``callmesh crds``: the resource API on the command line."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


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

    from callmesh.api.loader import parse_yaml, read_documents
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
    from callmesh.api.crd import drift, write_crds

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
