"""The dialer worker against the FreeSWITCH test peer on loopback.

The peer answers ``bgapi originate`` as FreeSWITCH does (BACKGROUND_JOB with ``+OK <uuid>``
or ``-ERR <cause>``, channel events, parked legs running ``sendmsg`` executions). Two things
it does not model are scripted here, as the real switch behaves: mod_amd's ``amd``
application (sets ``amd_result``) and ``uuid_transfer ... inline`` (recorded; a transfer to
callcontrol's socket is answered by an agent bridging, or not, per test).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import cast

import pytest
from callmesh.workers.dialer.config import load_config
from callmesh.workers.dialer.run import publish_status, resource_status
from callmesh.workers.dialer.worker import AuditLog, DialerWorker, StaticAgents
from callmesh.workers.esl.connection import InboundClient
from callmesh.workers.kubestatus import KubeStatusApi, StatusPublisher
from esl_peer.channel import Channel
from esl_peer.peer import Endpoint, FakeFreeSwitch

from callmesh.api.dialercampaign import DialerCampaignStatus

CENTER = """\
apiVersion: callmesh.io/v1alpha1
kind: ContactCenter
metadata: {name: center, namespace: outbound}
spec:
  sipDomain: outbound.example.com
  timeZone: UTC
  trunks:
    - {name: carrier, host: sip.carrier.example.net, register: false}
---
apiVersion: callmesh.io/v1alpha1
kind: AgentTeam
metadata: {name: sellers, namespace: outbound}
spec:
  agents:
    - {id: ann, name: Ann, extension: "1001"}
    - {id: bob, name: Bob, extension: "1002"}
---
apiVersion: callmesh.io/v1alpha1
kind: Queue
metadata: {name: sales, namespace: outbound}
spec:
  tiers: [{level: 1, teams: [sellers]}]
"""

CAMPAIGN = """\
---
apiVersion: callmesh.io/v1alpha1
kind: DialerCampaign
metadata: {{name: {name}, namespace: outbound}}
spec:
  mode: {mode}
  state: {state}
  queue: sales
  contactList: {{configMap: {{name: {name}-list, key: contacts.csv}}}}
  doNotCall: [{{name: dnc, key: numbers.txt}}]
  callerId: {{number: "+12125550100", name: ACME}}
  callingWindow: {{days: [mon, tue, wed, thu, fri, sat, sun], start: "{start}", end: "{end}"}}
  pacing: {{complianceWindowSeconds: {window}}}
  retries: [{{disposition: busy, maxAttempts: 1}}, {{disposition: noAnswer, maxAttempts: 1}}]
  answeringMachine: {{detect: {detect}}}
  safeHarbourMessage: {{file: "safe-harbour.wav"}}
{extra}"""

CSV = """id,phone,timeZone,name
h1,+12125550001,UTC,Human
b1,+12125550002,UTC,Busy
n1,+12125550003,UTC,Nobody
m1,+12125550004,UTC,Machine
d1,+12125550005,UTC,OnDnc
bad,12-34,UTC,Malformed
h1,+12125550006,UTC,DuplicateId
z1,+12125550007,Mars/Olympus,UnknownZone
"""


def campaign(
    name: str,
    *,
    mode: str = "progressive",
    state: str = "running",
    window: float = 2,
    detect: str = "true",
    start: str = "00:00",
    end: str = "23:59",
    extra: str = "",
) -> str:
    return CAMPAIGN.format(
        name=name,
        mode=mode,
        state=state,
        window=window,
        detect=detect,
        start=start,
        end=end,
        extra=extra,
    )


def dial(number: str) -> str:
    return f"sofia/external/{number}@carrier.test"


class Switch:
    """The peer plus the scripted pieces: mod_amd verdicts and uuid_transfer."""

    def __init__(self, peer: FakeFreeSwitch) -> None:
        self.peer = peer
        self.transfers: list[tuple[str, str]] = []
        self.amd: dict[str, str] = {}  # number -> HUMAN/MACHINE
        self.agent_answers = True
        peer.api_functions["uuid_transfer"] = self._transfer
        peer.core.apps["amd"] = self._amd

    async def _amd(self, channel: Channel, arg: str) -> str:
        number = channel.profile.get("Destination-Number", "")
        channel.variables["amd_result"] = self.amd.get(number, "HUMAN")
        return "_none_"

    def _transfer(self, peer: FakeFreeSwitch, args: str) -> str:
        uuid, _, rest = args.partition(" ")
        channel = peer.channels.get(uuid)
        if channel is None or channel.hungup.is_set():
            return "-ERR No such channel!\n"
        self.transfers.append((uuid, rest))
        if "socket:" in rest and self.agent_answers:
            agent = peer.new_channel(direction="outbound", name="sofia/internal/1001@agents")
            agent.answer(early_media=False)
            peer.bridge(channel, agent)
        elif "hangup:" in rest:
            channel.hangup("NORMAL_CLEARING")
            channel.finish()
        return "+OK\n"


@pytest.fixture
async def switch(esl_peer: FakeFreeSwitch) -> Switch:
    return Switch(esl_peer)


def write_tenant(tmp_path: Path, campaigns: str, csv: str = CSV) -> tuple[Path, Path]:
    config = tmp_path / "tenant.yaml"
    config.write_text(CENTER + campaigns)
    lists = tmp_path / "lists"
    for name in ("calls", "other", "press"):
        (lists / f"{name}-list").mkdir(parents=True, exist_ok=True)
        (lists / f"{name}-list" / "contacts.csv").write_text(csv)
    (lists / "dnc").mkdir(parents=True, exist_ok=True)
    (lists / "dnc" / "numbers.txt").write_text("# opted out\n+1 212 555 0005\n")
    return config, lists


@pytest.fixture
async def client(esl_peer: FakeFreeSwitch) -> AsyncIterator[InboundClient]:
    esl = InboundClient("127.0.0.1", esl_peer.port, "ClueCon")
    await esl.start()
    try:
        yield esl
    finally:
        await esl.close()


async def wait_for(
    condition: Callable[[], bool], worker: DialerWorker, timeout: float = 10.0
) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(
            f"timed out; status {worker.status()}; audit {worker.audit.records}"
        ) from None


def outcomes(audit: AuditLog) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for record in audit.records:
        if "outcome" in record:
            contact = record["attempt"].split(".")[1]
            out.setdefault(contact, []).append(record["outcome"])
    return out


def connected(worker: DialerWorker, contact: str) -> str | None:
    """The uuid of ``contact``'s call once an agent is bridged to it."""
    for record in worker.audit.records:
        if record.get("outcome") == "connected" and record["attempt"].split(".")[1] == contact:
            return str(record["uuid"])
    return None


async def start_worker(
    config: Path, lists: Path, esl: InboundClient, free: int, tmp_path: Path
) -> DialerWorker:
    worker = DialerWorker(
        load_config(config, lists),
        esl=esl,
        agents=StaticAgents({"sales": free}),
        callcontrol="10.0.0.7:8084",
        audit=AuditLog(tmp_path / "audit.jsonl"),
        interval=0.05,
        dial_string="sofia/external/{number}@carrier.test",
    )
    await worker.start()
    return worker


async def test_progressive_campaign_dials_maps_outcomes_and_hands_people_to_the_queue(
    switch: Switch, client: InboundClient, tmp_path: Path
) -> None:
    peer = switch.peer
    peer.endpoints[dial("+12125550002")] = Endpoint("busy")
    peer.endpoints[dial("+12125550003")] = Endpoint("no_answer")
    switch.amd["+12125550004"] = "MACHINE"
    config, lists = write_tenant(tmp_path, campaign("calls"))
    worker = await start_worker(config, lists, client, free=4, tmp_path=tmp_path)
    try:
        await wait_for(lambda: list(worker.calls) == [connected(worker, "h1")], worker)
    finally:
        await worker.stop()

    originates = [c for c in peer.commands if c.startswith("bgapi originate")]
    assert len(originates) == 4
    human = next(c for c in originates if "+12125550001" in c)
    assert "origination_caller_id_number=+12125550100" in human
    assert "origination_caller_id_name=ACME" in human
    assert "callmesh_attempt=calls.h1.1" in human and "callmesh_attr_name=Human" in human
    assert human.endswith("sofia/external/+12125550001@carrier.test &park()")
    assert not any("+12125550005" in c for c in peer.commands)  # on the DNC list

    seen = outcomes(worker.audit)
    assert seen["h1"][:3] == ["human", "queued", "connected"]
    assert seen["b1"] == ["busy"] and seen["n1"] == ["noAnswer"]
    assert seen["m1"] == ["machine", "hangup", "ended"]  # answeringMachine.action: hangup
    (connect,) = [rest for _, rest in switch.transfers if "socket:" in rest]
    assert connect == (
        "'set:callmesh_queue=sales,set:callmesh_attempt=calls.h1.1,"
        "socket:10.0.0.7:8084 async full' inline"
    )

    status = worker.status()["calls"]
    assert status["rejectedRows"] == 3 and status["contacts"] == 5
    rows = status["problems"][0]
    assert "row 7: phone '12-34' is not an E.164 number" in rows
    assert "row 8: duplicate id 'h1'" in rows and "row 9: time zone 'Mars/Olympus'" in rows
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    refused = [r for r in lines if r.get("dialled") is False]
    assert refused and all(r["phone"] == "+12125550005" for r in refused)
    assert {r["reason"] for r in refused} == {"on the do-not-call list"}


async def test_no_agent_within_the_window_gets_the_safe_harbour_message(
    switch: Switch, client: InboundClient, tmp_path: Path
) -> None:
    switch.agent_answers = False
    csv = "id,phone\nh1,+12125550001\n"
    config, lists = write_tenant(tmp_path, campaign("calls", window=0.2, detect="false"), csv)
    worker = await start_worker(config, lists, client, free=1, tmp_path=tmp_path)
    try:
        await wait_for(lambda: "abandoned" in outcomes(worker.audit).get("h1", []), worker)
        await wait_for(lambda: not worker.calls, worker)
    finally:
        await worker.stop()
    safe = [rest for _, rest in switch.transfers if "hangup:" in rest]
    assert safe == ["'playback:safe-harbour.wav,hangup:NORMAL_CLEARING' inline"]
    status = worker.status()["calls"]
    assert (status["answered"], status["abandoned"], status["abandonPercent"]) == (1, 1, 100.0)


async def test_agentless_press_one_goes_to_the_queue(
    switch: Switch, client: InboundClient, tmp_path: Path
) -> None:
    peer = switch.peer

    def presses(digit: str) -> Callable[[Channel], None]:
        def setup(channel: Channel) -> None:
            channel.when_app("play_and_get_digits", lambda ch, arg: ch.caller_dtmf(digit))

        return setup

    peer.endpoints[dial("+12125550001")] = Endpoint(on_channel=presses("1"))
    peer.endpoints[dial("+12125550002")] = Endpoint(on_channel=presses("9"))
    csv = "id,phone\np1,+12125550001\np2,+12125550002\n"
    extra = "  agentless: {message: {file: offer.wav}, transferDigit: '1', optOutDigit: '9'}\n"
    config, lists = write_tenant(
        tmp_path, campaign("press", mode="agentless", detect="false", extra=extra), csv
    )
    worker = await start_worker(config, lists, client, free=0, tmp_path=tmp_path)
    try:
        await wait_for(lambda: len(outcomes(worker.audit).get("p2", [])) >= 4, worker)
        await wait_for(lambda: connected(worker, "p1") is not None, worker)
    finally:
        await worker.stop()
    seen = outcomes(worker.audit)
    assert seen["p1"] == ["human", "announced", "queued", "connected"]
    assert seen["p2"] == ["human", "announced", "hangup", "ended"]
    played = [e for e in peer.fired if e.get("Application") == "play_and_get_digits"]
    assert any("offer.wav" in (e.get("Application-Data") or "") for e in played)
    assert any("opted out" in r.get("reason", "") for r in worker.audit.records)


async def test_paused_and_never_open_campaigns_say_so_and_the_others_dial(
    switch: Switch, client: InboundClient, tmp_path: Path
) -> None:
    csv = "id,phone\nh1,+12125550001\n"
    tenant = (
        campaign("calls", state="paused")
        + campaign("other", start="20:00", end="09:00")  # rejected by CEL; kept and reported
        + campaign("press", detect="false")
    )
    config, lists = write_tenant(tmp_path, tenant, csv)
    worker = await start_worker(config, lists, client, free=1, tmp_path=tmp_path)
    try:
        await wait_for(lambda: connected(worker, "h1") is not None, worker)
        status = worker.status()
    finally:
        await worker.stop()
    assert status["calls"]["state"] == "paused" and status["calls"]["dialled"] == 0
    assert not status["other"]["windowOpens"] and not status["other"]["dialling"]
    assert any("never opens" in p for p in status["other"]["problems"])
    assert status["other"]["dialled"] == 0 and status["press"]["dialled"] == 1
    originates = [c for c in switch.peer.commands if c.startswith("bgapi originate")]
    assert len(originates) == 1 and "callmesh_campaign=press" in originates[0]


async def test_setting_the_spec_to_running_starts_dialling_and_paused_stops_it(
    switch: Switch, client: InboundClient, tmp_path: Path
) -> None:
    rows = "".join(f"h{i},+1212555{i:04d}\n" for i in range(1, 60))
    config, lists = write_tenant(
        tmp_path, campaign("calls", state="paused", detect="false"), "id,phone\n" + rows
    )
    worker = await start_worker(config, lists, client, free=1, tmp_path=tmp_path)
    try:
        await asyncio.sleep(0.2)  # several pacing steps: a paused campaign places nothing
        assert worker.status()["calls"]["dialled"] == 0
        config.write_text(CENTER + campaign("calls", detect="false"))
        worker.apply(load_config(config, lists))
        await wait_for(lambda: connected(worker, "h1") is not None, worker)
        config.write_text(CENTER + campaign("calls", state="paused", detect="false"))
        worker.apply(load_config(config, lists))
        dialled = worker.status()["calls"]["dialled"]
        assert 1 <= dialled < 59
        await asyncio.sleep(0.2)
        assert worker.status()["calls"]["state"] == "paused"
    finally:
        await worker.stop()
    assert worker.status()["calls"]["dialled"] == dialled  # nothing new once paused


async def test_a_restarted_worker_keeps_the_frequency_cap_and_the_abandon_rate(
    switch: Switch, client: InboundClient, tmp_path: Path
) -> None:
    """Stop the worker mid-campaign and start a new one on the same audit log, as a pod
    restart does: the day's abandon rate and each contact's attempts carry over."""
    switch.agent_answers = False
    switch.peer.endpoints[dial("+12125550002")] = Endpoint("busy")
    text = campaign("calls", window=0.2, detect="false", extra="  maxAttemptsPerDay: 1\n")
    text = text.replace(
        "{disposition: busy, maxAttempts: 1}",
        "{disposition: busy, maxAttempts: 3, delaySeconds: 0}",
    )
    config, lists = write_tenant(tmp_path, text, "id,phone\nh1,+12125550001\nb1,+12125550002\n")
    first = await start_worker(config, lists, client, free=2, tmp_path=tmp_path)
    try:
        await wait_for(lambda: "abandoned" in outcomes(first.audit).get("h1", []), first)
        await wait_for(
            lambda: any("frequency cap" in r.get("reason", "") for r in first.audit.records), first
        )
    finally:
        await first.stop()
    before = first.status()["calls"]
    assert (before["dialled"], before["answered"], before["abandoned"]) == (2, 1, 1)
    originated = len([c for c in switch.peer.commands if c.startswith("bgapi originate")])
    assert originated == 2

    second = await start_worker(config, lists, client, free=2, tmp_path=tmp_path)
    try:
        await asyncio.sleep(0.3)  # several pacing steps with two free agents
        after = second.status()["calls"]
    finally:
        await second.stop()
    assert (after["dialled"], after["answered"], after["abandoned"]) == (2, 1, 1)
    assert after["abandonPercent"] == 100.0
    assert len([c for c in switch.peer.commands if c.startswith("bgapi originate")]) == 2
    assert not any(r.get("dialled") for r in second.audit.records)

    fresh = tmp_path / "elsewhere"  # the same restart without the log: both dialled again
    fresh.mkdir()
    third = await start_worker(config, lists, client, free=2, tmp_path=fresh)
    try:
        await wait_for(lambda: third.status()["calls"]["dialled"] == 2, third)
    finally:
        await third.stop()
    assert len([c for c in switch.peer.commands if c.startswith("bgapi originate")]) == 4


class RecordingApi:
    """Stands in for the Kubernetes API: records the status merge patches."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, str, str, dict[str, object]]] = []

    async def patch_status(
        self, namespace: str, plural: str, name: str, fields: Mapping[str, object]
    ) -> None:
        self.patches.append((namespace, plural, name, dict(fields)))

    async def aclose(self) -> None:
        return None


async def test_each_campaign_status_is_published_with_its_abandon_rate(
    switch: Switch, client: InboundClient, tmp_path: Path
) -> None:
    switch.agent_answers = False
    csv = "id,phone\nh1,+12125550001\nbad,12\n"
    config, lists = write_tenant(tmp_path, campaign("calls", window=0.2, detect="false"), csv)
    worker = await start_worker(config, lists, client, free=1, tmp_path=tmp_path)
    api = RecordingApi()
    publisher = StatusPublisher("outbound", api=cast(KubeStatusApi, api), interval=60)
    try:
        await wait_for(lambda: "abandoned" in outcomes(worker.audit).get("h1", []), worker)
        publish_status(worker, publisher)
        await publisher.flush()
    finally:
        await worker.stop()
    assert api.patches == [
        (
            "outbound",
            "dialercampaigns",
            "calls",
            {
                "abandonPercent": 100.0,
                "contacts": 1,
                "rejectedRows": 1,
                "dialled": 1,
                "answered": 1,
                "abandoned": 1,
                "reached": 0,
                "remaining": 1,
            },
        )
    ]
    fields = resource_status(worker.status())["calls"]
    assert set(fields) <= set(DialerCampaignStatus.model_json_schema(by_alias=True)["properties"])
