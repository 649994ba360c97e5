"""Every manifest under examples/ loads into its model, is consistent, and passes `callmesh validate`.

The examples are what a platform team copies, and what `callmesh simulate` and the dialer run,
so besides parsing they are held to the promises examples/README.md makes: references that
resolve, IVR graphs without dead ends, every agent of a queue's teams holding the queue's skills,
valid time zones and E.164 numbers, and data files (contact lists, do-not-call lists) that
exist under the name the manifests use.
"""

from __future__ import annotations

import csv
import json
import re
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from callmesh.api import (
    KIND_BY_NAME,
    AgentTeam,
    ContactCenter,
    DialerCampaign,
    DialerMode,
    IVRFlow,
    NodeType,
    Queue,
    Resource,
)
from callmesh.api.base import Channel

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TENANTS = ("acme-insurance", "globex-telecom")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
TERMINAL = {
    NodeType.queue,
    NodeType.transfer,
    NodeType.voicemail,
    NodeType.callback,
    NodeType.hangup,
}


@dataclass(frozen=True)
class Doc:
    """One YAML document of an example file."""

    path: Path
    index: int
    body: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.path.relative_to(REPO)}#{self.index}"


def manifest_files() -> list[Path]:
    """YAML files that hold resources: not the plugin package, not the tenants' data/ folders."""
    found = []
    for path in sorted(EXAMPLES.rglob("*")):
        rel = path.relative_to(EXAMPLES).parts
        if path.suffix not in {".yaml", ".yml"} or rel[0] == "plugins" or "data" in rel[:-1]:
            continue
        found.append(path)
    return found


#: apiVersion of `callmesh simulate` workloads: YAML that sits beside the manifests but is
#: never applied to a cluster (issue 6).
WORKLOAD_API = "sim.callmesh.io/v1alpha1"


def all_documents() -> list[Doc]:
    docs = []
    for path in manifest_files():
        for index, body in enumerate(yaml.safe_load_all(path.read_text())):
            if body is not None:
                docs.append(Doc(path, index, body))
    return docs


def is_workload(doc: Doc) -> bool:
    return isinstance(doc.body, dict) and doc.body.get("apiVersion") == WORKLOAD_API


def load(doc: Doc) -> Resource:
    kind = doc.body.get("kind")
    assert doc.body.get("apiVersion") == "callmesh.io/v1alpha1", (
        f"{doc.label}: apiVersion {doc.body.get('apiVersion')!r}: examples hold only callmesh.io/"
        "v1alpha1 resources; put other files (CSV, plain data) under the tenant's data/ folder"
    )
    assert kind in KIND_BY_NAME, f"{doc.label}: kind {kind!r} is not one of {sorted(KIND_BY_NAME)}"
    return KIND_BY_NAME[kind].model_validate(doc.body)


ALL_DOCS = all_documents()
DOCS = [d for d in ALL_DOCS if not is_workload(d)]
WORKLOADS = [d for d in ALL_DOCS if is_workload(d)]


@dataclass
class TenantObjects:
    """One tenant's loaded objects, by kind."""

    folder: Path
    centers: list[ContactCenter]
    queues: dict[str, Queue]
    teams: dict[str, AgentTeam]
    flows: dict[str, IVRFlow]
    campaigns: dict[str, DialerCampaign]

    @property
    def center(self) -> ContactCenter:
        assert len(self.centers) == 1, f"{self.folder.name}: want exactly one ContactCenter"
        return self.centers[0]

    def agents(self, team_names: list[str]) -> Iterator[tuple[str, Any]]:
        for name in team_names:
            for agent in self.teams[name].spec.agents:
                yield name, agent


def tenant(name: str) -> TenantObjects:
    objs = TenantObjects(EXAMPLES / name, [], {}, {}, {}, {})
    for doc in DOCS:
        if doc.path.relative_to(EXAMPLES).parts[0] != name:
            continue
        obj = load(doc)
        assert obj.namespace == name, f"{doc.label}: namespace {obj.namespace!r}, want {name!r}"
        if isinstance(obj, ContactCenter):
            objs.centers.append(obj)
            continue
        group: dict[str, Any] = {
            Queue: objs.queues,
            AgentTeam: objs.teams,
            IVRFlow: objs.flows,
            DialerCampaign: objs.campaigns,
        }[type(obj)]
        assert obj.name not in group, f"{doc.label}: second {obj.kind_name} named {obj.name}"
        group[obj.name] = obj
    return objs


# --- every document is a valid resource ------------------------------------------------------


def test_examples_hold_both_tenants_with_every_kind() -> None:
    kinds_by_tenant: dict[str, set[str]] = {}
    for doc in DOCS:
        kinds_by_tenant.setdefault(doc.path.relative_to(EXAMPLES).parts[0], set()).add(
            str(doc.body.get("kind"))
        )
    assert sorted(kinds_by_tenant) == sorted(TENANTS)
    for name in TENANTS:
        assert kinds_by_tenant[name] == set(KIND_BY_NAME), name


@pytest.mark.parametrize("doc", DOCS, ids=[d.label for d in DOCS])
def test_document_parses_into_its_model(doc: Doc) -> None:
    obj = load(doc)
    folder = doc.path.relative_to(EXAMPLES).parts[0]
    assert obj.namespace == folder, f"{doc.label}: put it in namespace {folder}"
    # What the model writes back is what the file says (no field silently dropped or renamed).
    again = type(obj).model_validate(obj.to_manifest())
    assert again == obj


def test_tenant_roots_hold_only_what_kubectl_can_apply() -> None:
    """`kubectl apply -f examples/TENANT/` reads the folder's own files (not sub-folders):
    a simulator workload there would be sent to the API server, which has no such kind."""
    for doc in WORKLOADS:
        rel = doc.path.relative_to(EXAMPLES).parts
        assert len(rel) > 2, (
            f"{doc.label}: a {WORKLOAD_API} workload at the tenant's top level breaks "
            f"`kubectl apply -f examples/{rel[0]}/`; move it to examples/{rel[0]}/simulate/"
        )


@pytest.mark.parametrize("doc", WORKLOADS, ids=[d.label for d in WORKLOADS])
def test_workload_parses_and_names_what_its_tenant_has(doc: Doc) -> None:
    from callmesh.api import group_by_namespace
    from callmesh.sim.workload import check_against, parse_workload

    folder = doc.path.relative_to(EXAMPLES).parts[0]
    objects = [load(d) for d in DOCS if d.path.relative_to(EXAMPLES).parts[0] == folder]
    workload = parse_workload(doc.body, doc.label)
    check_against(group_by_namespace(objects)[folder], workload, doc.label)


# --- cross references inside each tenant -----------------------------------------------------


@pytest.mark.parametrize("name", TENANTS)
def test_agent_ids_and_extensions_unique_in_namespace(name: str) -> None:
    t = tenant(name)
    agents = [a for team in t.teams.values() for a in team.spec.agents]
    for what, values in (
        ("id", [a.id for a in agents]),
        ("extension", [a.extension for a in agents]),
    ):
        dupes = [v for v, n in Counter(values).items() if n > 1]
        assert dupes == [], f"{name}: agent {what}s used twice: {dupes}"


@pytest.mark.parametrize("name", TENANTS)
def test_every_agent_works_a_shift_of_its_team(name: str) -> None:
    for team in tenant(name).teams.values():
        ids = {a.id for a in team.spec.agents}
        covered: set[str] = set()
        for shift in team.spec.shifts:
            unknown = set(shift.agents) - ids
            assert not unknown, f"{name}/{team.name} shift {shift.name}: unknown agents {unknown}"
            covered |= set(shift.agents) or ids
        assert covered == ids, f"{name}/{team.name}: agents without a shift: {ids - covered}"


@pytest.mark.parametrize("name", TENANTS)
def test_queue_tiers_name_teams_whose_agents_hold_the_required_skills(name: str) -> None:
    t = tenant(name)
    for queue in t.queues.values():
        teams = [team for tier in queue.spec.tiers for team in tier.teams]
        missing = [team for team in teams if team not in t.teams]
        assert not missing, f"{name}/queue {queue.name}: no AgentTeam named {missing}"
        for team_name, agent in t.agents(teams):
            levels = {s.name: s.level for s in agent.skills}
            for need in queue.spec.required_skills:
                assert levels.get(need.name, 0) >= need.min_level, (
                    f"{name}/queue {queue.name}: agent {agent.id} of {team_name} lacks "
                    f"{need.name} >= {need.min_level}"
                )
            capacity = getattr(agent.capacity, queue.spec.channel.value)
            assert capacity > 0, (
                f"{name}/queue {queue.name} is {queue.spec.channel.value}: agent {agent.id} "
                f"of {team_name} has capacity 0 on that channel"
            )
        if queue.spec.overflow and queue.spec.overflow.queue:
            assert queue.spec.overflow.queue in t.queues


@pytest.mark.parametrize("name", TENANTS)
def test_numbers_route_to_existing_flows(name: str) -> None:
    t = tenant(name)
    for route in t.center.spec.numbers:
        assert E164.match(route.did), route.did
        assert route.flow in t.flows, f"{name}: {route.did} routed to missing flow {route.flow}"
    routed = {r.flow for r in t.center.spec.numbers}
    assert routed == set(t.flows), f"{name}: flows no number reaches: {set(t.flows) - routed}"


def test_dids_are_unique_across_tenants() -> None:
    dids = [r.did for n in TENANTS for r in tenant(n).center.spec.numbers]
    assert len(dids) == len(set(dids))


@pytest.mark.parametrize("name", TENANTS)
def test_time_zones_are_iana_names(name: str) -> None:
    t = tenant(name)
    zones = [t.center.spec.time_zone]
    zones += [s.time_zone for s in t.center.spec.schedules if s.time_zone]
    zones += [c.spec.calling_window.default_time_zone for c in t.campaigns.values()]
    for zone in zones:
        zoneinfo.ZoneInfo(zone)


def _edges(flow: IVRFlow, node_id: str) -> list[str]:
    node = next(n for n in flow.spec.nodes if n.id == node_id)
    s = node.settings()
    targets: list[str | None] = []
    if node.type is NodeType.menu:
        assert node.menu is not None
        targets += [o.target for o in node.menu.options]
        targets += [node.menu.invalid_target, node.menu.timeout_target]
        if node.menu.invalid_target is None or node.menu.timeout_target is None:
            targets.append(flow.spec.on_error)
    elif node.type is NodeType.condition:
        assert node.condition is not None
        targets += [node.condition.if_true, node.condition.if_false]
    elif node.type is NodeType.crm_lookup:
        assert node.crm_lookup is not None
        targets += [node.crm_lookup.next, node.crm_lookup.not_found]
    elif node.type is NodeType.collect:
        assert node.collect is not None
        targets += [node.collect.next, node.collect.invalid_target]
    elif node.type not in TERMINAL:
        targets.append(getattr(s, "next"))  # noqa: B009 - play, say, setAttribute
    if node.type in {NodeType.condition, NodeType.crm_lookup} and flow.spec.on_error:
        targets.append(flow.spec.on_error)
    return [x for x in targets if x is not None]


@pytest.mark.parametrize("name", TENANTS)
def test_ivr_graphs_are_closed_reachable_and_end_in_a_terminal(name: str) -> None:
    t = tenant(name)
    schedules = {s.name for s in t.center.spec.schedules}
    for flow in t.flows.values():
        ids = [n.id for n in flow.spec.nodes]
        where = f"{name}/flow {flow.name}"
        assert len(ids) == len(set(ids)), f"{where}: duplicate node ids"
        for start in [flow.spec.entry, flow.spec.on_error]:
            assert start is None or start in ids, f"{where}: no node {start}"
        graph = {i: _edges(flow, i) for i in ids}
        for source, targets in graph.items():
            for target in targets:
                assert target in graph, f"{where}: node {source} leads to missing node {target}"
        seen, todo = set(), [flow.spec.entry]
        while todo:
            node_id = todo.pop()
            if node_id not in seen:
                seen.add(node_id)
                todo += graph[node_id]
        assert seen == set(ids), f"{where}: unreachable nodes {set(ids) - seen}"
        # Every node can still reach a terminal node (no loop without an exit).
        ends = {n.id for n in flow.spec.nodes if n.type in TERMINAL}
        can_end = set(ends)
        changed = True
        while changed:
            changed = False
            for source, targets in graph.items():
                if source not in can_end and any(x in can_end for x in targets):
                    can_end.add(source)
                    changed = True
        assert can_end == set(ids), f"{where}: nodes that never end: {set(ids) - can_end}"
        for node in flow.spec.nodes:
            if node.condition and node.condition.schedule:
                assert node.condition.schedule in schedules, f"{where}: {node.id} schedule"
            if node.callback:
                assert node.callback.queue in t.queues, f"{where}: {node.id} callback queue"
            if node.queue:
                queue = t.queues.get(node.queue.queue)
                assert queue is not None, f"{where}: {node.id} queues to {node.queue.queue}"
                teams = [team for tier in queue.spec.tiers for team in tier.teams]
                for need in node.queue.skills:
                    holders = [
                        a.id
                        for _, a in t.agents(teams)
                        if any(s.name == need.name and s.level >= need.min_level for s in a.skills)
                    ]
                    assert holders, (
                        f"{where}: node {node.id} needs {need.name} >= {need.min_level}, "
                        f"which no agent of queue {queue.name}'s teams holds"
                    )


def _data(t: TenantObjects, key: str) -> Path:
    path = t.folder / "data" / key
    assert path.is_file(), (
        f"{t.folder.name}: a manifest refers to key {key!r}: add data/{key} "
        "(the ConfigMap is created with kubectl create configmap --from-file)"
    )
    return path


@pytest.mark.parametrize("name", TENANTS)
def test_campaigns_target_queues_and_ship_their_lists(name: str) -> None:
    t = tenant(name)
    dids = {r.did for r in t.center.spec.numbers}
    for campaign in t.campaigns.values():
        spec = campaign.spec
        assert spec.queue in t.queues, f"{name}/{campaign.name}: no queue {spec.queue}"
        assert spec.caller_id.number in dids, (
            f"{name}/{campaign.name}: caller ID {spec.caller_id.number} is not a DID of the "
            "center, so a call-back would reach nobody"
        )
        assert spec.contact_list.config_map is not None
        with _data(t, spec.contact_list.config_map.key).open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows, f"{name}/{campaign.name}: empty contact list"
        assert list(rows[0])[:3] == ["id", "phone", "timeZone"]
        assert len({r["id"] for r in rows}) == len(rows), "duplicate contact ids"
        for row in rows:
            assert E164.match(row["phone"]), row
            zoneinfo.ZoneInfo(row["timeZone"])
        for ref in spec.do_not_call:
            lines = _data(t, ref.key).read_text().split()
            assert lines and all(E164.match(x) for x in lines), ref.key


# --- what the brief asks of each tenant ------------------------------------------------------


def test_acme_insurance_is_the_voice_tenant_the_readme_describes() -> None:
    t = tenant("acme-insurance")
    spec = t.center.spec
    assert spec.time_zone == "America/New_York"
    assert spec.recording.policy.value == "perQueue"
    assert {t.password.name for t in spec.trunks if t.password} == {"acme-trunk-credentials"}
    hours = next(s for s in spec.schedules if s.name == "business-hours")
    years = Counter(h.date[:4] for h in hours.holidays)
    assert years["2026"] >= 10 and years["2027"] >= 10, years
    assert {q.spec.channel for q in t.queues.values()} == {Channel.voice}
    assert set(t.queues) == {"sales", "claims", "support"}
    assert len(t.teams) == 3
    assert 35 <= sum(len(team.spec.agents) for team in t.teams.values()) <= 45
    support = t.queues["support"].spec
    assert [(x.level, x.escalate_after_seconds) for x in support.tiers] == [(1, 0), (2, 30)]
    assert t.queues["claims"].spec.strategy.name == "skills-best-match"
    for queue in t.queues.values():
        assert queue.spec.max_wait_seconds > 0 and queue.spec.overflow is not None
    assert [c.spec.mode for c in t.campaigns.values()] == [DialerMode.predictive]
    main = t.flows["acme-main"].spec
    types = Counter(n.type for n in main.nodes)
    assert types[NodeType.crm_lookup] == 1 and types[NodeType.voicemail] >= 1
    vip = [n.condition for n in main.nodes if n.condition and n.condition.expression]
    assert vip and 'attributes["crm.vip"]' in (vip[0].expression or "")
    crm = next(p for p in spec.plugins if p.name == "memory-crm")
    assert any(c["attributes"].get("vip") == "true" for c in crm.config["customers"])


def test_globex_telecom_has_chat_voice_and_a_press_one_campaign() -> None:
    t = tenant("globex-telecom")
    channels = {q.name: q.spec.channel for q in t.queues.values()}
    assert Channel.chat in channels.values() and Channel.voice in channels.values()
    chat = next(q for q in t.queues.values() if q.spec.channel is Channel.chat)
    chat_agents = [a for _, a in t.agents([x for tier in chat.spec.tiers for x in tier.teams])]
    assert chat_agents and all(a.capacity.chat == 3 for a in chat_agents)
    (campaign,) = t.campaigns.values()
    assert campaign.spec.mode is DialerMode.agentless
    assert campaign.spec.agentless is not None and campaign.spec.agentless.transfer_digit == "1"
    assert t.queues[campaign.spec.queue].spec.channel is Channel.voice


# --- `callmesh validate` ---------------------------------------------------------------------


def run_validate(*paths: Path) -> tuple[int, str]:
    """Run `callmesh validate --output json PATHS` in-process; exit code and output."""
    from callmesh.cli import app

    result = CliRunner().invoke(app, ["validate", "--output", "json", *map(str, paths)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_examples_pass_callmesh_validate() -> None:
    code, output = run_validate(EXAMPLES)
    assert code == 0, f"callmesh validate examples/ reported problems:\n{output}"
    problems = json.loads(output) if output.strip().startswith("[") else []
    assert problems == [], output


# --- the examples run on the real engines ----------------------------------------------------


@pytest.mark.parametrize("name", TENANTS)
def test_plugin_configs_match_the_plugins_config_models(name: str) -> None:
    from callmesh.plugins.catalog import PluginCatalog

    catalog = PluginCatalog(environ={})
    for ref in tenant(name).center.spec.plugins:
        loaded = catalog.load(ref.name)
        if loaded.config_model is None:
            assert ref.config == {}, f"{name}: plugin {ref.name} takes no config"
        else:
            loaded.config_model.model_validate(ref.config)


def _session(name: str, flow: str) -> Any:
    from callmesh.ivr import IvrSession, compile_flow

    t = tenant(name)
    center = t.center.spec
    return IvrSession(compile_flow(t.flows[flow], center.schedules, center.time_zone))


def _at(zone: str, *when: int) -> float:
    import datetime as dt

    year, month, day, hour, minute = when
    return dt.datetime(year, month, day, hour, minute, tzinfo=zoneinfo.ZoneInfo(zone)).timestamp()


NY = "America/New_York"


def test_acme_vip_caller_reaches_an_auto_claims_adjuster_first() -> None:
    from callmesh.ivr import CallInfo, Digits, EnqueueContact, LookupResult, PromptFinished

    s = _session("acme-insurance", "acme-main")
    now = _at(NY, 2026, 11, 24, 10, 0)  # a Tuesday morning
    s.start(CallInfo(ani="+12125550142", dnis="+12125550100"), now)
    s.handle(LookupResult(attributes={"vip": "true", "policy": "HO-2231-8847"}), now)
    s.handle(PromptFinished(), now)
    s.handle(Digits("2"), now)
    (enqueue, *_) = s.handle(Digits("1"), now)
    assert isinstance(enqueue, EnqueueContact)
    assert (enqueue.queue, enqueue.priority) == ("claims", 50)
    assert [(k.name, k.min_level) for k in enqueue.skills] == [("claims-auto", 4)]


@pytest.mark.parametrize(
    ("lookup", "path_has"),
    [
        ({"vip": "false"}, "vip-check"),  # known, not a VIP
        (None, "welcome"),  # unknown caller
        ("CRM down", "welcome"),  # lookup failed: onError
    ],
)
def test_acme_other_callers_queue_at_normal_priority(lookup: Any, path_has: str) -> None:
    from callmesh.ivr import CallInfo, Digits, EnqueueContact, LookupResult, PromptFinished

    s = _session("acme-insurance", "acme-main")
    now = _at(NY, 2026, 11, 24, 15, 0)
    s.start(CallInfo(ani="+17185550117", dnis="+12125550100"), now)
    if isinstance(lookup, str):
        s.handle(LookupResult(error=lookup), now)
    else:
        s.handle(LookupResult(attributes=lookup), now)
    s.handle(PromptFinished(), now)
    (enqueue, *_) = s.handle(Digits("3"), now)
    assert isinstance(enqueue, EnqueueContact)
    assert (enqueue.queue, enqueue.priority) == ("support", 0)
    assert path_has in s.path


def test_acme_three_wrong_keys_reach_the_operator() -> None:
    from callmesh.ivr import CallInfo, Digits, LookupResult, PromptFinished, Transfer

    s = _session("acme-insurance", "acme-main")
    now = _at(NY, 2026, 11, 24, 9, 0)
    s.start(CallInfo(ani="+19175550100", dnis="+12125550100"), now)
    s.handle(LookupResult(attributes=None), now)
    s.handle(PromptFinished(), now)
    actions: list[Any] = []
    for _ in range(3):
        actions = s.handle(Digits("7"), now)
    transfers = [a for a in actions if isinstance(a, Transfer)]
    assert [t.destination for t in transfers] == ["sip:reception@pbx.acme-insurance.example.com"]


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ((2026, 11, 24, 10, 0), True),  # Tuesday
        ((2026, 11, 24, 20, 30), False),  # Tuesday evening
        ((2026, 11, 28, 13, 0), True),  # Saturday, open until 14:00
        ((2026, 11, 29, 11, 0), False),  # Sunday
        ((2026, 12, 25, 10, 0), False),  # Christmas Day
        ((2026, 12, 24, 14, 0), False),  # Christmas Eve, open 08:00-13:00 only
        ((2027, 6, 18, 16, 30), True),  # Juneteenth observed, open 09:00-17:00
        ((2027, 7, 5, 10, 0), False),  # Independence Day observed
    ],
)
def test_acme_business_hours_and_holidays(when: tuple[int, ...], open_: bool) -> None:
    from callmesh.ivr import CallInfo, Timeout, Voicemail

    s = _session("acme-insurance", "acme-main")
    now = _at(NY, *when)
    s.start(CallInfo(ani="+19175550100", dnis="+12125550100"), now)
    assert (s.path[-1] != "closed-menu") is open_, s.path
    if not open_:  # silence on the closed menu leaves a voicemail
        mail = [a for a in s.handle(Timeout(), now) if isinstance(a, Voicemail)]
        assert [m.mailbox for m in mail] == ["after-hours"]


def test_globex_care_menu_and_closed_hours() -> None:
    from callmesh.ivr import CallInfo, Digits, EnqueueContact, Hangup

    chicago = "America/Chicago"
    s = _session("globex-telecom", "globex-care")
    now = _at(chicago, 2026, 11, 29, 21, 0)  # Sunday evening, open until 22:00
    s.start(CallInfo(ani="+13125550160", dnis="+13125550150"), now)
    s.handle(Digits("1"), now)
    (enqueue, *_) = s.handle(Digits("1"), now)
    assert isinstance(enqueue, EnqueueContact)
    assert enqueue.queue == "voice-support"
    assert [(k.name, k.min_level) for k in enqueue.skills] == [("internet", 5)]

    late = _session("globex-telecom", "globex-care")
    actions = late.start(CallInfo(ani="+13125550160", dnis="+13125550150"), now + 3600)
    assert any(isinstance(a, Hangup) for a in actions)
