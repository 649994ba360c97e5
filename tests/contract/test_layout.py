"""The layout is the architecture: the core stays pure, dependencies point inward."""

from __future__ import annotations

import ast
from pathlib import Path

import callmesh

CORE = Path(callmesh.__file__).resolve().parent

# Modules the pure core may never import: I/O frameworks and the adapters around the core.
FORBIDDEN = (
    "kopf",
    "kubernetes",
    "grpc",
    "pluggy",
    "socket",
    "asyncio",
    "socketserver",
    "http",
    "httpx",
    "aiosmtplib",
    "sqlalchemy",
    "threading",
    "subprocess",
    "callmesh.operator",
    "callmesh.workers",
    "callmesh.plugins",
    "callmesh.v1",
)
# The composition root may import anything, lazily, to run the adapters.
EXEMPT = {"cli.py", "commands.py"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_core_imports_no_io_or_adapters() -> None:
    offences = []
    for path in sorted(CORE.rglob("*.py")):
        if path.name in EXEMPT:
            continue
        for lineno, name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN):
                offences.append(f"{path.relative_to(CORE.parent)}:{lineno} imports {name}")
    assert offences == [], "the pure core must not do I/O:\n" + "\n".join(offences)


def test_adapters_are_mapped_into_the_callmesh_namespace() -> None:
    import callmesh.operator
    import callmesh.plugins
    import callmesh.v1
    import callmesh.workers

    for module in (callmesh.operator, callmesh.plugins, callmesh.workers, callmesh.v1):
        assert module.__name__.startswith("callmesh.")
