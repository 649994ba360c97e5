"""`callmesh simulate examples/` end to end: the README's first command, its JSON and report.

The JSON is checked against the published JSON Schema and for determinism (same seed, same
bytes); the HTML report is opened in headless Chromium, screenshotted, and the screenshot
decoded to check that the charts were drawn (their line colours are on the page).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from callmesh.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCHEMA = ROOT / "callmesh" / "sim" / "simulate-result.schema.json"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _simulate(*args: str) -> Any:
    result = CliRunner().invoke(app, ["simulate", *args, "--no-progress"])
    return result


@pytest.fixture(scope="module")
def example_json() -> tuple[str, dict[str, Any]]:
    result = _simulate(str(EXAMPLES), "-r", "2", "--seed", "7", "-o", "json")
    assert result.exit_code == 0, result.output
    return result.stdout, json.loads(result.stdout)


def test_json_follows_the_schema_and_covers_both_tenants(
    example_json: tuple[str, dict[str, Any]],
) -> None:
    _, doc = example_json
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert [r["tenant"] for r in doc["runs"]] == ["acme-insurance", "globex-telecom"]
    for run in doc["runs"]:
        assert run["checks"]["flowConservationViolations"] == 0
        assert run["checks"]["littleLawMaxRelativeError"] < 1e-9
        for q in run["queues"]:
            assert q["total"]["offered"]["mean"] > 0
            assert len(q["intervals"]) == len(run["day"]["intervals"])
    acme, globex = (run["campaigns"] for run in doc["runs"])
    # The examples' campaigns, with the real dialer engine: predictive keeps its agents busy
    # near its cap; agentless listeners who press 1 reach the sales desk.
    ((renewals,), (fiber,)) = acme, globex
    assert renewals["name"] == "policy-renewals" and renewals["mode"] == "predictive"
    assert renewals["occupancyPercent"]["mean"] > 50
    assert renewals["reached"]["mean"] > 0 and renewals["reachedPerAgentHour"]["mean"] > 0
    assert renewals["abandonedPercent"]["n"] == 2
    assert fiber["mode"] == "agentless" and fiber["transferred"]["mean"] > 0
    assert fiber["abandoned"]["mean"] == 0  # a message plays: nobody waits for an agent


def test_same_seed_gives_the_same_json(example_json: tuple[str, dict[str, Any]]) -> None:
    _, doc = example_json
    globex = ["-r", "2", "-o", "json", "-t", "globex-telecom"]
    again = _simulate(str(EXAMPLES), "--seed", "7", *globex)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["runs"] == [doc["runs"][1]]
    # ... and byte for byte, run after run.
    assert _simulate(str(EXAMPLES), "--seed", "7", *globex).stdout == again.stdout
    other = _simulate(str(EXAMPLES), "--seed", "8", *globex)
    assert other.exit_code == 0
    assert json.loads(other.stdout)["runs"] != [doc["runs"][1]]


def test_table_output_names_every_queue() -> None:
    result = _simulate(str(EXAMPLES / "globex-telecom"), "-r", "2")
    assert result.exit_code == 0, result.output
    for name in ("voice-support", "chat-support", "sales", "chat-desk", "tech-support"):
        assert name in result.stdout
    assert "Little's law" in result.stdout
    assert "outbound campaigns" in result.stdout and "fiber-upgrade (agentless)" in result.stdout


def test_bad_workload_is_rejected_before_simulating(tmp_path: Path) -> None:
    good = (EXAMPLES / "acme-insurance" / "simulate" / "workload.yaml").read_text()
    for change, message in [
        (("mean: 540, sd: 300", "mean: 540, sd: -3"), "spec.queues.claims.handleTime.sd:"),
        (("intervalMinutes: 30", "intervalMinutes: 25"), "spec: intervalMinutes 25 does not"),
        (("- node: claims-menu", "- node: claims-menuu"), "spec.ivr[0].menus[1].node:"),
        (("sales:\n      handleTime", "salez:\n      handleTime"), "spec.queues.salez:"),
        (("    policy-renewals:\n", "    renewals:\n"), "spec.campaigns.renewals: unknown"),
        (("contactRate: 0.32", "contactRate: 0.92"), "spec.campaigns.policy-renewals: contactRate"),
    ]:
        assert change[0] in good
        (tmp_path / "w.yaml").write_text(good.replace(*change))
        result = _simulate(str(EXAMPLES / "acme-insurance"), "--workload", str(tmp_path / "w.yaml"))
        assert result.exit_code == 2, result.output
        assert message in result.output.replace("\n", " ")
        assert "contacts simulated" not in result.output


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 0xFF
        rows.append(
            bytes(line) if channels == 3 else bytes(line[j] for j in range(stride) if j % 4 != 3)
        )
        prev = line
    return width, height, rows


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium is not installed (scripts/apt-packages.txt)"
)
def test_report_opens_in_headless_chromium_with_its_charts(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = _simulate(str(EXAMPLES), "-r", "2", "--report", str(report), "-t", "acme-insurance")
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "<script" not in text and "http://" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert text.count("<svg") >= 9  # SL, ASA, offered, occupancy, histograms, 2 campaign charts
    assert "Outbound campaigns" in text and "policy-renewals" in text
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=960,640",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (960, 640)
    pixels = {row[i : i + 3] for row in rows for i in range(0, len(row), 3)}
    blue, red = bytes.fromhex("1f77b4"), bytes.fromhex("d62728")  # first two series colours
    assert blue in pixels and red in pixels, "the chart lines were not drawn"
    assert len(pixels) > 200  # text, bands, lines: not a blank or error page
