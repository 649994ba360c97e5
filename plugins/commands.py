"""``callmesh plugins``: list installed plugins, check a tenant's plugin config, print the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

plugins_app = typer.Typer(
    name="plugins",
    help="Plugins: what is installed, whether a ContactCenter's plugin config is valid, "
    "and the hook reference.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``plugins`` command group to the ``callmesh`` command."""
    app.add_typer(plugins_app)


@plugins_app.command("list")
def list_command() -> None:
    """Show every plugin: name, version, hooks and the package it comes from.

    Built-ins come first. Installed plugins left out by CALLMESH_PLUGINS are listed as not
    allowed; plugins that cannot be used (a name clash, an import error) are listed with the
    reason, and the command then exits 1.
    """
    from callmesh.plugins.catalog import PluginCatalog
    from callmesh.plugins.errors import PluginLoadError
    from rich.console import Console
    from rich.table import Table

    catalog = PluginCatalog()
    table = Table(title="callmesh plugins")
    for column in ("name", "version", "hooks", "source package"):
        table.add_column(column)
    broken = dict(catalog.refused)
    for info in catalog.infos():
        try:
            hooks = "\n".join(catalog.load(info.name).hooks) or "-"
        except PluginLoadError as exc:
            broken[info.name] = str(exc)
            continue
        source = f"{info.source} (built-in)" if info.builtin else info.source
        table.add_row(info.name, info.version, hooks, source)
    console = Console(width=120)
    console.print(table)
    for name, why in sorted(catalog.excluded.items()):
        console.print(f"[yellow]not allowed[/yellow] {name}: {why}", highlight=False)
    for name, why in sorted(broken.items()):
        console.print(f"[red]not usable[/red] {name}: {why}", highlight=False)
    if broken:
        raise typer.Exit(1)


@plugins_app.command("check")
def check_command(
    manifest: Annotated[
        Path, typer.Argument(help="A YAML file holding a ContactCenter.", exists=True)
    ],
) -> None:
    """Validate the plugins a ContactCenter enables (spec.plugins) against their own configs.

    Loads every enabled plugin, validates its config and checks its hooks against the
    contract; prints each problem as `spec.plugins[i].config.field: message`. Exits 1 on any.
    """
    import yaml
    from callmesh.plugins.errors import PluginError
    from callmesh.plugins.manager import PluginManager

    found = False
    failed = False
    for doc in yaml.safe_load_all(manifest.read_text()):
        if not isinstance(doc, dict) or doc.get("kind") != "ContactCenter":
            continue
        found = True
        name = (doc.get("metadata") or {}).get("name", "?")
        specs = (doc.get("spec") or {}).get("plugins") or []
        try:
            manager = PluginManager(specs)
        except PluginError as exc:
            failed = True
            typer.echo(f"{manifest}: ContactCenter/{name}: {exc}", err=True)
            continue
        enabled = ", ".join(p.name for p in manager.plugins)
        typer.echo(f"{manifest}: ContactCenter/{name}: plugins ok ({enabled})")
    if not found:
        typer.echo(f"{manifest}: no ContactCenter in this file", err=True)
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(1)


@plugins_app.command("reference")
def reference_command(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (e.g. docs/plugins/reference.md)."),
    ] = None,
) -> None:
    """Print the hook reference generated from hookspecs.py (Markdown)."""
    from callmesh.plugins.reference import render_reference

    text = render_reference()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
