"""Plugins shipped with callmesh; each is an ordinary plugin (see ``catalog.BUILTIN_PLUGINS``)."""
