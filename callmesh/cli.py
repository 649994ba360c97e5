"""The ``callmesh`` command line: one console script for every job.

Each area of the project owns its commands in a ``commands`` module with a
``register(app)`` function; this module only assembles them, so that ``callmesh --help``
lists everything and heavy imports (kopf, grpc) happen only when their command runs.
"""

from __future__ import annotations

import importlib

import typer

HELP = """\
callmesh: a contact center that runs on Kubernetes.

Declare queues, IVR menus, agent teams and dialer campaigns as YAML
(callmesh.io/v1alpha1), check them with `callmesh validate`, see how they would
perform with `callmesh simulate`, and let `callmesh operator` run them.

Typical first steps:

  callmesh validate examples/          check manifests, naming each bad field and its fix

  callmesh crds                        regenerate crds/ from the resource models
"""

app = typer.Typer(
    name="callmesh",
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Modules whose ``register(app)`` adds commands, in the order --help lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "callmesh.api.commands",
    "callmesh.wfm.commands",
    "callmesh.plugins.commands",
    "callmesh.sim.commands",
    "callmesh.operator.commands",
    "callmesh.workers.commands",
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(app)


@app.callback()
def _root() -> None:
    """callmesh: a contact center that runs on Kubernetes."""


_register_all()


def main() -> None:
    """Entry point of the ``callmesh`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
