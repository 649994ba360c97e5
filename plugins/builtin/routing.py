"""The built-in routing strategies, registered through the same hook vendors use."""

from __future__ import annotations

from collections.abc import Callable

from callmesh.plugins.hookspecs import hookimpl

from callmesh.acd.strategies import BUILTIN_STRATEGIES
from callmesh.acd.strategy import RoutingStrategy

__all__ = ["BuiltinRouting"]


class BuiltinRouting:
    """mod_callcenter's strategies (longest-idle-agent, round-robin, top-down, ring-all, ...)
    and skills-best-match, from the pure ACD core; also the manager's fallback."""

    @hookimpl
    def callmesh_routing_strategies(self, register: Callable[[RoutingStrategy], None]) -> None:
        """Register every strategy of ``callmesh.acd.strategies.BUILTIN_STRATEGIES``."""
        for strategy in BUILTIN_STRATEGIES.values():
            register(strategy)
