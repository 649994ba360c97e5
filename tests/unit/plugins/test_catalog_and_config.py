"""Discovery, the allowlist, loud import errors, per-tenant config and contract checks."""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import types
from collections.abc import Iterator

import pytest
from callmesh.plugins import hookimpl
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.errors import PluginConfigError, PluginContractError, PluginLoadError
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.testkit import make_agents, make_request
from pydantic import BaseModel, ConfigDict


class GoodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    retries: int = 1


class Configured:
    """Takes a config."""

    config_model = GoodConfig

    def __init__(self, config: GoodConfig) -> None:
        self.config = config

    @hookimpl
    def callmesh_route_contact(self, request: object) -> None:
        """No opinion."""


@pytest.fixture
def fake_modules() -> Iterator[types.ModuleType]:
    module = types.ModuleType("callmesh_test_vendor")
    module.Configured = Configured  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def ep(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name, value, "callmesh")


def test_builtins_are_listed_first_and_always_available() -> None:
    catalog = PluginCatalog(environ={"CALLMESH_PLUGINS": ""}, entry_points=[])
    names = [i.name for i in catalog.infos()]
    assert names[:2] == ["routing", "keyword-qa"]
    assert {"memory-crm", "http-crm", "smtp-notifier", "remote"} <= set(names)
    assert all(i.builtin and i.source == "callmesh" for i in catalog.infos())


def test_entry_point_plugins_load_lazily_and_once(fake_modules: types.ModuleType) -> None:
    catalog = PluginCatalog(
        environ={}, entry_points=[ep("vendor", "callmesh_test_vendor:Configured")]
    )
    assert "vendor" in catalog and not catalog.info("vendor").builtin
    first = catalog.load("vendor")
    assert first is catalog.load("vendor")
    assert first.config_model is GoodConfig and first.hooks == ("callmesh_route_contact",)


def test_allowlist_empty_means_none(fake_modules: types.ModuleType) -> None:
    catalog = PluginCatalog(
        environ={"CALLMESH_PLUGINS": ""},
        entry_points=[ep("vendor", "callmesh_test_vendor:Configured")],
    )
    assert "vendor" not in catalog
    assert "CALLMESH_PLUGINS" in catalog.excluded["vendor"]
    with pytest.raises(PluginConfigError, match=r"spec.plugins\[0\].name: .*CALLMESH_PLUGINS"):
        PluginManager([{"name": "vendor"}], catalog=catalog)


def test_allowlist_names_admit_plugins(fake_modules: types.ModuleType) -> None:
    eps = [
        ep("vendor", "callmesh_test_vendor:Configured"),
        ep("other", "callmesh_test_vendor:Configured"),
    ]
    catalog = PluginCatalog(environ={"CALLMESH_PLUGINS": "vendor, x"}, entry_points=eps)
    assert "vendor" in catalog and "other" not in catalog


def test_entry_point_clashing_with_a_builtin_is_refused() -> None:
    catalog = PluginCatalog(environ={}, entry_points=[ep("routing", "nowhere:X")])
    assert catalog.info("routing").builtin
    assert "clashes" in catalog.refused["routing"]


def test_import_error_is_raised_loudly_naming_the_plugin() -> None:
    catalog = PluginCatalog(environ={}, entry_points=[ep("broken", "callmesh_no_such_module:X")])
    with pytest.raises(
        PluginLoadError, match=r"plugin 'broken' .* failed to import: ModuleNotFound"
    ) as err:
        PluginManager([{"name": "broken"}], catalog=catalog)
    assert isinstance(err.value.__cause__, ModuleNotFoundError)


def test_unknown_plugin_name_lists_the_available_ones() -> None:
    catalog = PluginCatalog(environ={}, entry_points=[])
    with pytest.raises(
        PluginConfigError, match=r"spec.plugins\[0\].name: no plugin named 'vip-routng'.*memory-crm"
    ):
        PluginManager([{"name": "vip-routng"}], catalog=catalog)


def test_config_is_validated_against_the_plugins_model(fake_modules: types.ModuleType) -> None:
    catalog = PluginCatalog(
        environ={}, entry_points=[ep("vendor", "callmesh_test_vendor:Configured")]
    )
    with pytest.raises(PluginConfigError) as err:
        PluginManager(
            [
                {"name": "memory-crm", "config": {}},
                {"name": "vendor", "config": {"retries": "many", "urll": "x"}},
                {"name": "keyword-qa", "config": {"x": 1}},
                {"config": {}},
                {"name": "memory-crm"},
            ],
            catalog=catalog,
            where="spec.plugins",
        )
    problems = err.value.problems
    assert "spec.plugins[1].config.url: Field required" in problems
    assert any(p.startswith("spec.plugins[1].config.retries: ") for p in problems)
    assert any(p.startswith("spec.plugins[1].config.urll: Extra inputs") for p in problems)
    assert "spec.plugins[2].config: plugin 'keyword-qa' takes no config; remove it" in problems
    assert any(p.startswith("spec.plugins[3].name: ") for p in problems)
    assert any(
        p.startswith("spec.plugins[4].name: 'memory-crm' is already enabled") for p in problems
    )


def test_valid_config_reaches_the_instance_and_disabled_entries_are_skipped(
    fake_modules: types.ModuleType,
) -> None:
    catalog = PluginCatalog(
        environ={}, entry_points=[ep("vendor", "callmesh_test_vendor:Configured")]
    )

    class Ref:  # like callmesh.api's PluginRef
        def __init__(self, name: str, config: dict[str, object], enabled: bool = True) -> None:
            self.name, self.config, self.enabled = name, config, enabled

    manager = PluginManager(
        [Ref("vendor", {"url": "http://crm"}), Ref("memory-crm", {"customers": 3}, enabled=False)],
        catalog=catalog,
    )
    names = [p.name for p in manager.plugins]
    assert names == ["keyword-qa", "routing", "vendor"]
    vendor = next(p for p in manager.plugins if p.name == "vendor")
    assert isinstance(vendor.instance, Configured) and vendor.instance.config.url == "http://crm"


def test_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def callmesh_route_contacts(self, request: object) -> None:
            """Misspelled."""

    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("typo", Typo, source="t")
    with pytest.raises(PluginContractError, match="callmesh_route_contacts"):
        PluginManager([{"name": "typo"}], catalog=catalog)


def test_a_hook_implemented_under_a_dunder_name_with_specname_still_counts() -> None:
    # The manager's pluggy skips object's own names (dir(object)), not every dunder.
    class Callable_:
        @hookimpl(specname="callmesh_route_contacts")
        def __call__(self, request: object) -> None:
            """A hook under another name, misspelled: pluggy must still see it."""

    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("dunder", Callable_, source="t")
    with pytest.raises(PluginContractError, match="callmesh_route_contacts"):
        PluginManager([{"name": "dunder"}], catalog=catalog)


def test_wrong_arguments_fail_loudly() -> None:
    class BadArgs:
        @hookimpl
        def callmesh_route_contact(self, request: object, extra: object) -> None:
            """Asks for an argument the hook does not have."""

    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("bad", BadArgs, source="t")
    with pytest.raises(PluginContractError, match=r"(?s)plugin 'bad'.*extra"):
        PluginManager([{"name": "bad"}], catalog=catalog)


@pytest.mark.parametrize("wrong", ["sync-for-async", "async-for-sync"])
def test_wrong_shape_fails_loudly(wrong: str) -> None:
    if wrong == "sync-for-async":

        class Plugin:
            @hookimpl
            def callmesh_crm_lookup(self, query: object) -> None:
                """Should be async."""

    else:

        class Plugin:  # type: ignore[no-redef]
            @hookimpl
            async def callmesh_route_contact(self, request: object) -> None:
                """Should be sync."""

    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("shape", Plugin, source="t")
    with pytest.raises(PluginContractError, match="must be implemented with"):
        PluginManager([{"name": "shape"}], catalog=catalog)


def test_wrappers_are_refused() -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def callmesh_route_contact(self, request: object) -> object:
            """A wrapper."""
            return (yield)

    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("wrap", Wrapper, source="t")
    with pytest.raises(PluginContractError, match="may not be a wrapper"):
        PluginManager([{"name": "wrap"}], catalog=catalog)


def test_trace_env_logs_every_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CALLMESH_TRACE_PLUGINS", "1")
    caplog.set_level(logging.DEBUG, logger="callmesh.plugins.trace")
    manager = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    manager.route(make_request(make_agents(3)))
    assert "routing callmesh_route_contact -> RoutingDecision" in caplog.text


def test_the_routing_fallback_cannot_be_disabled() -> None:
    with pytest.raises(
        PluginConfigError, match=r"spec.plugins\[0\].enabled: .*cannot be turned off"
    ):
        PluginManager(
            [{"name": "routing", "enabled": False}],
            catalog=PluginCatalog(environ={}, entry_points=[]),
        )


def test_keyword_qa_can_be_disabled() -> None:
    manager = PluginManager(
        [{"name": "keyword-qa", "enabled": False}],
        catalog=PluginCatalog(environ={}, entry_points=[]),
    )
    assert [p.name for p in manager.plugins] == ["routing"]


def test_installed_entry_points_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog per replication must not scan every distribution's metadata again."""
    from callmesh.plugins.catalog import _installed

    calls: list[str] = []
    real = importlib.metadata.entry_points

    def counting(**kwargs: str) -> object:
        calls.append(kwargs.get("group", ""))
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    _installed.cache_clear()
    try:
        first = PluginCatalog(environ={})
        second = PluginCatalog(environ={})
    finally:
        _installed.cache_clear()
    assert calls == ["callmesh"]
    assert [i.name for i in first.infos()] == [i.name for i in second.infos()]
