"""Which plugins exist: the built-ins and whatever is installed under the ``callmesh`` group.

Discovery reads entry-point metadata only, once per process (installed packages do not
change under a running process; the scan of every distribution's metadata costs
milliseconds, and a simulation builds a catalog per replication); a plugin's code is
imported the first time a tenant enables it (or ``callmesh plugins list`` shows its hooks),
once per process. An import
error is raised as :class:`~callmesh.plugins.errors.PluginLoadError` naming the plugin, its
entry point and its distribution, with the original error chained: never swallowed.

A plugin is a class or a module carrying :data:`~callmesh.plugins.hookimpl` functions:

* a **class** is instantiated once per tenant. If it has a ``config_model`` class attribute
  (a pydantic model, ideally with ``extra="forbid"``), the tenant's ``config`` is validated
  against it and the instance is built as ``cls(config)``; otherwise as ``cls()`` and any
  config is refused. ``multi_instance = True`` lets a tenant enable it several times, each
  with a distinct ``config.name`` (the remote-plugin adapter does this).
* a **module** is registered as it is and takes no config.

``CALLMESH_PLUGINS`` (comma-separated names) is an allowlist for installed, third-party
plugins: unset allows every installed one, set but empty allows none. Built-ins are always
available.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from callmesh.plugins.errors import PluginLoadError
from callmesh.plugins.hookspecs import HOOKS, PROJECT
from pydantic import BaseModel

__all__ = [
    "BUILTIN_PLUGINS",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LoadedPlugin",
    "PluginCatalog",
    "PluginInfo",
]

ENTRY_POINT_GROUP = PROJECT
ALLOWLIST_ENV = "CALLMESH_PLUGINS"

BUILTIN_PLUGINS: Mapping[str, str] = {
    "routing": "callmesh.plugins.builtin.routing:BuiltinRouting",
    "keyword-qa": "callmesh.plugins.builtin.qa:KeywordQA",
    "memory-crm": "callmesh.plugins.builtin.memory_crm:MemoryCRM",
    "http-crm": "callmesh.plugins.builtin.http_crm:HttpCRM",
    "smtp-notifier": "callmesh.plugins.builtin.smtp:SmtpNotifier",
    "remote": "callmesh.plugins.remote:RemotePlugin",
}
"""Built-in plugins by name -> ``module:attribute``; they are plugins like any other."""

DEFAULT_PLUGINS: tuple[str, ...] = ("routing", "keyword-qa")
"""Built-ins every tenant has without listing them (listing one sets its config)."""


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What is known about a plugin before importing it.

    Attributes:
        name: the name a ContactCenter's ``spec.plugins[].name`` uses.
        version: the distribution's version (callmesh's own for built-ins).
        source: the distribution (pip package) that provides it.
        target: the entry point's ``module:attribute``.
        builtin: shipped with callmesh.
    """

    name: str
    version: str
    source: str
    target: str
    builtin: bool


@dataclass(frozen=True, slots=True)
class LoadedPlugin:
    """A plugin whose code is imported.

    Attributes:
        info: its metadata.
        obj: the class or module.
        config_model: the pydantic model its config is validated against, if any.
        hooks: the hooks it implements, in contract order.
        multi_instance: a tenant may enable it several times (with distinct ``config.name``).
        trusted: a built-in that runs inline (no thread hop) because it cannot hang.
    """

    info: PluginInfo
    obj: type[Any] | ModuleType
    config_model: type[BaseModel] | None
    hooks: tuple[str, ...]
    multi_instance: bool = False
    trusted: bool = False
    doc: str = field(default="")


@functools.cache
def _callmesh_version() -> str:
    try:
        return importlib.metadata.version("callmesh")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "0+unknown"


@functools.cache
def _installed() -> tuple[tuple[importlib.metadata.EntryPoint, str, str], ...]:
    """The installed ``callmesh`` entry points, described (see :func:`_described`)."""
    return tuple(_described(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)))


def _described(
    eps: Iterable[importlib.metadata.EntryPoint],
) -> list[tuple[importlib.metadata.EntryPoint, str, str]]:
    """Each entry point with its distribution's name and version ("?" when unknown)."""
    described = []
    for ep in eps:
        dist = ep.dist
        source = dist.metadata["Name"] if dist is not None else "?"
        described.append((ep, source, dist.version if dist is not None else "?"))
    return described


def _allowlist(environ: Mapping[str, str]) -> frozenset[str] | None:
    raw = environ.get(ALLOWLIST_ENV)
    if raw is None:
        return None
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _implemented_hooks(obj: object) -> tuple[str, ...]:
    found = []
    for name in HOOKS:
        fn = getattr(obj, name, None)
        if fn is not None and hasattr(fn, f"{PROJECT}_impl"):
            found.append(name)
    return tuple(found)


class PluginCatalog:
    """Every plugin this process can use: built-ins plus allowed entry points.

    Args:
        environ: where ``CALLMESH_PLUGINS`` is read (default: ``os.environ``).
        entry_points: the entry points to consider (default: the installed ``callmesh``
            group); tests pass their own.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        entry_points: list[importlib.metadata.EntryPoint] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.allowlist = _allowlist(env)
        version = _callmesh_version()
        self._infos: dict[str, PluginInfo] = {
            name: PluginInfo(name, version, "callmesh", target, True)
            for name, target in BUILTIN_PLUGINS.items()
        }
        self._entry_points: dict[str, importlib.metadata.EntryPoint] = {}
        self.refused: dict[str, str] = {}
        """Installed plugins that cannot be used (a name clash), by name -> why."""
        self.excluded: dict[str, str] = {}
        """Installed plugins left out by ``CALLMESH_PLUGINS``, by name -> why."""
        eps = _installed() if entry_points is None else _described(entry_points)
        for ep, source, dist_version in eps:
            if ep.name in self._infos:
                owner = self._infos[ep.name].source
                self.refused[ep.name] = (
                    f"entry point {ep.value!r} from {source} clashes with the plugin of the "
                    f"same name from {owner}; rename one of them"
                )
                continue
            if self.allowlist is not None and ep.name not in self.allowlist:
                self.excluded[ep.name] = (
                    f"installed from {source} but not in {ALLOWLIST_ENV}; add it to use it"
                )
                continue
            self._infos[ep.name] = PluginInfo(ep.name, dist_version, source, ep.value, False)
            self._entry_points[ep.name] = ep
        self._loaded: dict[str, LoadedPlugin] = {}
        self._lock = threading.Lock()

    def add(
        self, name: str, obj: type[Any] | ModuleType, *, source: str, version: str = "0"
    ) -> PluginInfo:
        """Make an in-process plugin (a class or module) available under ``name``.

        For embedding callmesh (a simulation with a plugin under development, a test);
        an installed plugin is found through its entry point instead.

        Raises:
            PluginLoadError: the name is taken, or ``obj`` is not a valid plugin.
        """
        if name in self._infos:
            raise PluginLoadError(f"a plugin named {name!r} already exists; pick another name")
        target = f"{getattr(obj, '__module__', obj.__name__)}:{obj.__name__}"
        info = PluginInfo(name, version, source, target, False)
        loaded = self._describe(info, obj)
        self._infos[name] = info
        self._loaded[name] = loaded
        return info

    def infos(self) -> list[PluginInfo]:
        """Every usable plugin: built-ins in declaration order, then the others by name."""
        order = {name: n for n, name in enumerate(BUILTIN_PLUGINS)}
        return sorted(self._infos.values(), key=lambda i: (order.get(i.name, len(order)), i.name))

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def info(self, name: str) -> PluginInfo:
        """The plugin's metadata.

        Raises:
            PluginLoadError: no such plugin (the message lists the available ones).
        """
        info = self._infos.get(name)
        if info is None:
            why = self.refused.get(name) or self.excluded.get(name)
            if why is not None:
                raise PluginLoadError(f"plugin {name!r} is not usable: {why}")
            known = ", ".join(sorted(self._infos))
            raise PluginLoadError(
                f"no plugin named {name!r} is installed (available: {known}); install its "
                f"package into the worker image or fix the name"
            )
        return info

    def load(self, name: str) -> LoadedPlugin:
        """Import the plugin (once) and describe it.

        Raises:
            PluginLoadError: unknown name, or its code failed to import (chained).
        """
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        with self._lock:
            loaded = self._loaded.get(name)
            if loaded is None:
                loaded = self._loaded[name] = self._load(self.info(name))
        return loaded

    def _load(self, info: PluginInfo) -> LoadedPlugin:
        try:
            if info.builtin:
                module_name, _, attr = info.target.partition(":")
                obj: Any = getattr(importlib.import_module(module_name), attr)
            else:
                obj = self._entry_points[info.name].load()
        except Exception as exc:
            raise PluginLoadError(
                f"plugin {info.name!r} ({info.target} from {info.source} {info.version}) "
                f"failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        return self._describe(info, obj)

    def _describe(self, info: PluginInfo, obj: Any) -> LoadedPlugin:
        if not (inspect.isclass(obj) or inspect.ismodule(obj)):
            raise PluginLoadError(
                f"plugin {info.name!r}: entry point {info.target} must name a class or a "
                f"module, not {type(obj).__name__}"
            )
        model = getattr(obj, "config_model", None)
        if inspect.ismodule(obj) and model is not None:
            raise PluginLoadError(
                f"plugin {info.name!r}: a module plugin cannot take config; make it a class "
                f"with config_model and __init__(self, config)"
            )
        if model is not None and not (inspect.isclass(model) and issubclass(model, BaseModel)):
            raise PluginLoadError(
                f"plugin {info.name!r}: config_model must be a pydantic BaseModel subclass"
            )
        return LoadedPlugin(
            info=info,
            obj=obj,
            config_model=model,
            hooks=_implemented_hooks(obj),
            multi_instance=bool(getattr(obj, "multi_instance", False)),
            trusted=info.builtin and bool(getattr(obj, "trusted", True)),
            doc=inspect.getdoc(obj) or "",
        )
