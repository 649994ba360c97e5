"""Errors of the plugin framework; each names the plugin (and the field) and says what to do."""

from __future__ import annotations

__all__ = ["PluginConfigError", "PluginContractError", "PluginError", "PluginLoadError"]


class PluginError(Exception):
    """Base class of every error the plugin framework raises."""


class PluginLoadError(PluginError):
    """A plugin could not be found or imported (the import error is chained, never hidden)."""


class PluginConfigError(PluginError, ValueError):
    """``spec.plugins`` is wrong; ``problems`` lists one ``field path: message`` per fault."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid plugin configuration:\n  " + "\n  ".join(problems))


class PluginContractError(PluginError):
    """A plugin breaks the hook contract (unknown hook, wrong signature or shape, clash)."""
