"""Benchmark: the ESL frame parser on the recorded FreeSWITCH 1.10.12 captures.

Feeds every FreeSWITCH -> client stream of ``../shared/esl/*.jsonl`` through
:class:`callmesh.workers.esl.parser.FrameParser` (framing plus event decoding into typed
objects), in the chunks ``recv()`` returned when recording and in 64 KiB chunks, and prints
frames/s and MB/s (best of ``--repeat`` rounds). Run from the repository root:

    PYTHONSAFEPATH=1 .venv/bin/python bench/esl_parser.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from callmesh.workers.esl.frames import EventFrame
from callmesh.workers.esl.parser import FrameParser

REPO = Path(__file__).resolve().parents[1]
CAPTURES = Path(os.environ.get("CALLMESH_ESL_CAPTURES", REPO.parent / "shared" / "esl"))


def load_streams() -> dict[str, list[list[bytes]]]:
    """Every s2c stream, as its recorded chunks, by capture name."""
    streams: dict[str, list[list[bytes]]] = {}
    for path in sorted(CAPTURES.glob("*.jsonl")):
        by_conn: dict[str, list[bytes]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["dir"] == "s2c":
                by_conn.setdefault(row.get("conn", "main"), []).append(row["data"].encode())
        streams[path.stem] = list(by_conn.values())
    if not streams:
        raise SystemExit(f"no captures found in {CAPTURES} (set CALLMESH_ESL_CAPTURES)")
    return streams


def run(streams: list[list[bytes]], rounds: int) -> tuple[int, int, int, float]:
    """Parse every stream ``rounds`` times; (frames, events, bytes, seconds)."""
    frames = events = size = 0
    start = time.perf_counter()
    for _ in range(rounds):
        for chunks in streams:
            parser = FrameParser()
            for chunk in chunks:
                for frame in parser.feed(chunk):
                    frames += 1
                    events += isinstance(frame, EventFrame)
            size += parser.bytes_fed
    return frames, events, size, time.perf_counter() - start


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over all captures")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    args = parser.parse_args()
    by_capture = load_streams()
    recorded = [stream for streams in by_capture.values() for stream in streams]
    big = [
        [data[i : i + 65536] for i in range(0, len(data), 65536)]
        for data in (b"".join(chunks) for chunks in recorded)
    ]
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{sum(len(c) for s in recorded for c in s) / 1e6:.2f} MB in {len(recorded)} streams")  # fmt: skip
    rows = [("all, recorded recv() chunks", recorded), ("all, 64 KiB chunks", big)]
    rows += [(name, streams) for name, streams in by_capture.items()]
    for label, streams in rows:
        best = min((run(streams, args.rounds) for _ in range(args.repeat)), key=lambda r: r[3])
        frames, events, size, seconds = best
        print(
            f"{label:>32}: {frames / seconds:>8,.0f} frames/s {events / seconds:>8,.0f} events/s"
            f" {size / seconds / 1e6:6.1f} MB/s"
        )


if __name__ == "__main__":
    main()
