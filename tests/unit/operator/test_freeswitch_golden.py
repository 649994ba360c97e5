"""FreeSWITCH configuration of the example tenants against hand-reviewed golden files.

``tests/golden/freeswitch/<tenant>/`` holds, file by file, the configuration directory the
operator mounts at /etc/freeswitch for each tenant of examples/. The files were reviewed by
hand against FreeSWITCH's own default configuration (signalwire/freeswitch conf/vanilla:
freeswitch.xml, vars.xml, autoload_configs/event_socket.conf.xml, sofia.conf.xml with
sip_profiles/internal.xml and external.xml, modules.conf.xml, console.conf.xml,
local_stream.conf.xml, voicemail.conf.xml, directory/default.xml, dialplan/public.xml,
lang/en/en.xml) and the parameter tables in its sources; see docs/operator.md.

The rendered XML is parsed and compared with the golden file in canonical form (C14N), so a
difference in layout does not matter and any difference in content fails. After an
intended change, regenerate with

    CALLMESH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/operator/test_freeswitch_golden.py

and REVIEW THE DIFF (``git diff tests/golden``) against FreeSWITCH's configuration before
committing it: a golden file is only worth the review it got.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from callmesh.operator import freeswitch as fs
from callmesh.operator.render import RenderOptions, build_freeswitch_configmap

from callmesh.api import Tenant
from callmesh.api.validate import load_tenants

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "freeswitch"
UPDATE = os.environ.get("CALLMESH_UPDATE_GOLDEN") == "1"
TENANTS = ("acme-insurance", "globex-telecom")

#: Every <param name=...> each configuration may use: the names checked one by one in
#: FreeSWITCH's sources (mod_sofia/sofia.c, switch_core.c, mod_event_socket.c,
#: mod_voicemail.c, mod_local_stream.c, mod_console.c), so a misspelt parameter, which
#: FreeSWITCH ignores silently, fails here.
KNOWN_PARAMS = {
    "switch.conf": {
        "colorize-console",
        "loglevel",
        "max-sessions",
        "sessions-per-second",
        "rtp-start-port",
        "rtp-end-port",
        "dump-cores",
    },
    "event_socket.conf": {"nat-map", "listen-ip", "listen-port", "password", "apply-inbound-acl"},
    "console.conf": {"colorize", "loglevel"},
    "local_stream.conf": {"rate", "shuffle", "channels", "interval", "timer-name"},
    "voicemail.conf": {
        "file-extension",
        "terminator-key",
        "max-login-attempts",
        "digit-timeout",
        "min-record-len",
        "max-record-len",
        "max-retries",
        "tone-spec",
        "callback-dialplan",
        "callback-context",
        "play-new-messages-lifo",
        "record-silence-threshold",
        "record-silence-hits",
        "storage-dir",
    },
    "sofia.conf": {
        # global_settings
        "log-level",
        "debug-presence",
        # profiles
        "context",
        "dialplan",
        "sip-port",
        "rtp-ip",
        "sip-ip",
        "ext-rtp-ip",
        "ext-sip-ip",
        "rfc2833-pt",
        "dtmf-duration",
        "inbound-codec-prefs",
        "outbound-codec-prefs",
        "inbound-codec-negotiation",
        "rtp-timer-name",
        "hold-music",
        "apply-nat-acl",
        "apply-inbound-acl",
        "local-network-acl",
        "auth-calls",
        "auth-subscriptions",
        "inbound-reg-force-matching-username",
        "force-register-domain",
        "force-subscription-domain",
        "force-register-db-domain",
        "challenge-realm",
        "nonce-ttl",
        "manage-presence",
        "presence-hosts",
        "rtp-timeout-sec",
        "rtp-hold-timeout-sec",
        "inbound-late-negotiation",
        "nat-options-ping",
        # gateways
        "username",
        "password",
        "realm",
        "proxy",
        "register",
        "register-transport",
        "contact-params",
        "expire-seconds",
        "retry-seconds",
        "ping",
        "caller-id-in-from",
        "from-user",
    },
}


def rendered(namespace: str) -> dict[str, str]:
    """The tenant's switch configuration, by path under /etc/freeswitch."""
    tenant: Tenant = load_tenants([ROOT / "examples" / namespace])[namespace]
    data = build_freeswitch_configmap(tenant, RenderOptions())["data"]
    return {fs.CONFIG_PATHS[key]: text for key, text in data.items()}


def canonical(text: str) -> str:
    return ET.canonicalize(text, strip_text=True)


@pytest.mark.parametrize("namespace", TENANTS)
def test_configuration_matches_the_reviewed_golden_files(namespace: str) -> None:
    files = rendered(namespace)
    folder = GOLDEN / namespace
    if UPDATE:
        for path, text in files.items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        for old in folder.rglob("*.xml"):
            if str(old.relative_to(folder)) not in files:
                old.unlink()
    golden = {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.xml"))}
    assert sorted(golden) == sorted(files), (
        "the files differ from tests/golden — regenerate with CALLMESH_UPDATE_GOLDEN=1 "
        "and review the diff"
    )
    for path, text in files.items():
        assert canonical(text) == canonical(golden[path]), (
            f"{namespace}/{path} differs from its golden file — if intended, regenerate "
            "with CALLMESH_UPDATE_GOLDEN=1 and review the diff against FreeSWITCH's "
            "conf/vanilla before committing"
        )


@pytest.mark.parametrize("namespace", TENANTS)
def test_every_parameter_is_one_freeswitch_knows(namespace: str) -> None:
    for path, text in rendered(namespace).items():
        root = ET.fromstring(text)
        if root.tag != "configuration":
            continue
        name = root.attrib["name"]
        params = {p.attrib["name"] for p in root.iter("param")}
        if name in KNOWN_PARAMS:
            unknown = params - KNOWN_PARAMS[name]
            assert not unknown, f"{path}: {sorted(unknown)} are not {name} parameters"
        else:
            assert not params, f"{path}: no reviewed parameter list for {name}"


def test_structure_follows_the_vanilla_layout() -> None:
    files = rendered("acme-insurance")
    root = ET.fromstring(files["freeswitch.xml"])
    assert root.tag == "document" and root.attrib["type"] == "freeswitch/xml"
    includes = {
        s.attrib["name"]: s.find("X-PRE-PROCESS").attrib["data"] for s in root.iter("section")
    }
    assert includes == {
        "configuration": "autoload_configs/*.xml",
        "dialplan": "dialplan/*.xml",
        "directory": "directory/*.xml",
        "languages": "lang/en/*.xml",
    }
    for path in files:  # every file an include picks up is where the include looks
        assert path == "freeswitch.xml" or path == "vars.xml" or "/" in path
    modules = [
        m.attrib["module"]
        for m in ET.fromstring(files["autoload_configs/modules.conf.xml"]).iter("load")
    ]
    # each module that reads a configuration has one
    for module, conf in (
        ("mod_console", "console.conf.xml"),
        ("mod_event_socket", "event_socket.conf.xml"),
        ("mod_sofia", "sofia.conf.xml"),
        ("mod_voicemail", "voicemail.conf.xml"),
        ("mod_local_stream", "local_stream.conf.xml"),
    ):
        assert module in modules and f"autoload_configs/{conf}" in files
    language = ET.fromstring(files["lang/en/en.xml"]).find("language")
    assert language is not None and language.attrib["say-module"] == "en"
    macros = {m.attrib["name"] for m in language.iter("macro")}
    assert {"voicemail_play_greeting", "voicemail_record_message", "voicemail_goodbye"} <= macros
    # a registering trunk keeps its user name as the REGISTER address
    sofia = ET.fromstring(files["autoload_configs/sofia.conf.xml"])
    for gateway in sofia.iter("gateway"):
        params = {p.attrib["name"]: p.attrib["value"] for p in gateway.iter("param")}
        if params["register"] == "true":
            assert "from-user" not in params
