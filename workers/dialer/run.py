"""``callmesh worker dialer``: wire config, router feed, ESL client and worker together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from callmesh.workers.dialer.config import DialerConfigError, load_config
from callmesh.workers.dialer.feed import RouterAgentFeed
from callmesh.workers.dialer.worker import AuditLog, DialerWorker
from callmesh.workers.esl.connection import InboundClient
from callmesh.workers.kubestatus import StatusPublisher

from callmesh.api.dialercampaign import DialerCampaign

__all__ = ["publish_status", "resource_status", "run_dialer", "write_status"]

log = logging.getLogger("callmesh.workers.dialer")


def write_status(worker: DialerWorker, path: Path | None) -> None:
    """Log each campaign's problems once they change and write the status file."""
    status = worker.status()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(status, indent=2, sort_keys=True))
        tmp.replace(path)


def resource_status(status: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, object]]:
    """Per campaign, the fields of its DialerCampaign status the dialer knows.

    ``abandonPercent`` (the period's measured rate, as a float) with its ``answered`` and
    ``abandoned`` counts, ``contacts`` (valid contacts loaded), ``rejectedRows`` (rows
    skipped), ``dialled`` (calls placed), ``reached`` and ``remaining`` (contacts): the
    fields of :class:`~callmesh.api.dialercampaign.DialerCampaignStatus` other than the
    operator's ``conditions`` and ``observedGeneration``.
    """
    counts = ("contacts", "rejectedRows", "dialled", "answered", "abandoned", "reached")
    return {
        name: {
            "abandonPercent": float(fields["abandonPercent"]),
            **{key: int(fields[key]) for key in (*counts, "remaining")},
        }
        for name, fields in status.items()
    }


def publish_status(worker: DialerWorker, publisher: StatusPublisher) -> None:
    """Hand each campaign's status fields to ``publisher`` (sent at its next tick)."""
    for name, fields in resource_status(worker.status()).items():
        publisher.set(DialerCampaign.plural, name, fields)


async def run_dialer(
    config: Path,
    lists: Path,
    *,
    router: str,
    freeswitch: tuple[str, int],
    password: str,
    callcontrol: str,
    trunk: str | None,
    audit: Path,
    status: Path | None,
    reload_interval: float,
    publisher: StatusPublisher | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; raises ValueError on an unusable config.

    With a ``publisher``, each campaign's figures (:func:`resource_status`) go to its
    DialerCampaign's status every ``publisher.interval`` seconds.
    """
    try:
        cfg = load_config(config, lists)
    except DialerConfigError as exc:
        raise ValueError(str(exc)) from None
    for name, campaign in cfg.campaigns.items():
        for problem in campaign.problems:
            log.warning("campaign %s: %s", name, problem)
    esl = InboundClient(freeswitch[0], freeswitch[1], password)
    feed = RouterAgentFeed(router, cfg.wrap_up_seconds)
    await esl.start(wait=False)
    await feed.start()
    worker = DialerWorker(
        cfg, esl=esl, agents=feed, callcontrol=callcontrol, trunk=trunk, audit=AuditLog(audit)
    )
    feed.on_update = worker.wake
    await worker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    seen: dict[str, list[str]] = {}
    publishing = asyncio.create_task(publisher.run()) if publisher is not None else None
    try:
        while not stop.is_set():
            for name, state in worker.status().items():
                if state["problems"] != seen.get(name):
                    seen[name] = state["problems"]
                    for problem in state["problems"]:
                        log.warning("campaign %s: %s", name, problem)
            write_status(worker, status)
            if publisher is not None:
                publish_status(worker, publisher)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(reload_interval or 5.0):
                    await stop.wait()
            if reload_interval and not stop.is_set():
                try:
                    fresh = load_config(config, lists)
                except DialerConfigError as exc:
                    log.error("config not reloaded (the running one stays): %s", exc)
                    continue
                if fresh.digest != worker.config.digest:
                    log.info("config or lists changed: reloading")
                    worker.apply(fresh)
    finally:
        await worker.stop()
        await feed.stop()
        await esl.close()
        if publisher is not None and publishing is not None:
            publish_status(worker, publisher)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(publisher.flush(), timeout=5.0)  # the final figures
            publishing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publishing
