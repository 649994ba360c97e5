"""The vendor plugin contract: hook specifications, the manager, built-ins and the test kit.

A plugin needs only ``from callmesh.plugins import hookimpl`` and the types of
:mod:`callmesh.plugins.types` and :mod:`callmesh.acd.strategy`; the platform uses
:class:`callmesh.plugins.manager.PluginManager`.
"""

from callmesh.plugins.hookspecs import HOOKS, hookimpl, hookspec
from callmesh.plugins.types import CONTRACT_VERSION

__all__ = ["CONTRACT_VERSION", "HOOKS", "hookimpl", "hookspec"]
