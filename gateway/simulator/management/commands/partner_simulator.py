"""``manage.py partner_simulator``: run a simulated measurement partner in the foreground."""

from __future__ import annotations

import logging
import os
import signal
import threading
from argparse import ArgumentParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gateway.simulator.periodic import Periodic
from gateway.simulator.puller import Puller
from gateway.simulator.reporter import REPORT_EVENT_TYPES, Reporter
from gateway.simulator.server import PartnerSimulator, PlannedStep

logger = logging.getLogger("gateway.simulator")

# Secrets may come from the environment so they do not show in `ps` output.
SECRET_ENV = "PARTNER_SIMULATOR_SECRET"
API_KEY_ENV = "PARTNER_SIMULATOR_API_KEY"
# --count-event-types value that reports every event, whatever its type.
ALL_EVENT_TYPES = "all"


def parse_plan(value: str) -> list[str]:
    """``"500,429:5,reset,sleep:2"`` -> its steps, each checked; CommandError on anything else."""
    steps = []
    for part in filter(None, (item.strip() for item in value.split(","))):
        try:
            PlannedStep.parse(part)
        except ValueError as exc:
            raise CommandError(f"--respond: {exc}") from exc
        steps.append(part)
    return steps


def parse_event_types(value: str) -> frozenset[str] | None:
    """``"impression, click"`` -> those types; ``"all"`` -> None (every event type)."""
    if value.strip() == ALL_EVENT_TYPES:
        return None
    types = frozenset(item.strip() for item in value.split(",") if item.strip())
    if not types:
        raise CommandError(f"--count-event-types: give event types, or {ALL_EVENT_TYPES!r}")
    return types


class Command(BaseCommand):
    """Receives pushed batches (and/or pulls them), counts them, and reports counts back."""

    help = (
        "Run a local measurement-partner simulator on 127.0.0.1: verifies signed batches, "
        "stores them once per webhook-id, and optionally pulls batches and reports counts."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
        parser.add_argument(
            "--secret",
            default=None,
            help=f"verification keys (or ${SECRET_ENV}): whsec_ secrets and/or whpk_ public "
            "keys, space-separated; a request passes if any signature verifies",
        )
        parser.add_argument("--data-dir", default=None, help="default: var/simulator/<port>")
        parser.add_argument("--time-zone", default="UTC", help="partner reporting time zone")
        parser.add_argument(
            "--respond",
            default="",
            help="how to answer the first POSTs, e.g. 500,429:5,reset,stored-reset,sleep:2",
        )
        parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
        parser.add_argument("--gateway-url", default="http://127.0.0.1:8000")
        parser.add_argument("--api-key", default=None, help=f"partner API key (or ${API_KEY_ENV})")
        parser.add_argument(
            "--report-interval", type=float, default=0.0, help="seconds; 0 = never report"
        )
        parser.add_argument("--bias", type=float, default=0.0, help="0.03 reports 3 %% more")
        parser.add_argument(
            "--pull", action="store_true", help="also pull batches from the gateway"
        )
        parser.add_argument("--poll-interval", type=float, default=10.0)
        parser.add_argument(
            "--count-event-types",
            default=",".join(sorted(REPORT_EVENT_TYPES)),
            help=(
                "event types the reported impressions count, e.g. impression,click; "
                f"{ALL_EVENT_TYPES!r} counts every event (default: %(default)s)"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        secret = options["secret"] or os.environ.get(SECRET_ENV) or None
        api_key = options["api_key"] or os.environ.get(API_KEY_ENV) or None
        _check_options(options, api_key=api_key)
        event_types = parse_event_types(options["count_event_types"])
        simulator = PartnerSimulator(
            data_dir=_data_dir(options),
            secret=secret,
            time_zone=options["time_zone"],
            port=options["port"],
            respond=parse_plan(options["respond"]),
            delay=options["delay"],
        )
        with simulator:
            logger.info(
                "partner simulator listening on %s (time zone %s, %s batches on disk)",
                simulator.url,
                options["time_zone"],
                len(simulator.store.batch_ids()),
            )
            loops = _background_loops(
                simulator, options, secret=secret, api_key=api_key, event_types=event_types
            )
            for loop in loops:
                loop.start()
            _wait_for_signal()
            for loop in loops:
                loop.stop()
        logger.info("partner simulator stopped")


def _check_options(options: dict[str, Any], *, api_key: str | None) -> None:
    try:
        ZoneInfo(options["time_zone"])
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CommandError(f"--time-zone: unknown time zone {options['time_zone']!r}") from exc
    if (options["pull"] or options["report_interval"] > 0) and not api_key:
        raise CommandError(f"--pull and --report-interval need --api-key or ${API_KEY_ENV}")
    if options["pull"] and options["poll_interval"] <= 0:
        raise CommandError("--poll-interval must be positive")
    if options["delay"] < 0:
        raise CommandError("--delay must not be negative")


def _data_dir(options: dict[str, Any]) -> Path:
    if options["data_dir"]:
        return Path(options["data_dir"])
    return Path(settings.VAR_DIR) / "simulator" / str(options["port"] or "default")


def _background_loops(
    simulator: PartnerSimulator,
    options: dict[str, Any],
    *,
    secret: str | None,
    api_key: str | None,
    event_types: frozenset[str] | None,
) -> list[Periodic]:
    loops = []
    if options["pull"] and api_key:
        puller = Puller(
            store=simulator.store,
            gateway_url=options["gateway_url"],
            api_key=api_key,
            secret=secret,
        )
        loops.append(
            Periodic(name="puller", interval=options["poll_interval"], action=puller.poll_once)
        )
    if options["report_interval"] > 0 and api_key:
        reporter = Reporter(
            store=simulator.store,
            gateway_url=options["gateway_url"],
            api_key=api_key,
            bias=options["bias"],
            event_types=event_types,
        )
        loops.append(
            Periodic(
                name="reporter", interval=options["report_interval"], action=reporter.report_once
            )
        )
    return loops


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM, so a parent process can stop us cleanly."""
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        logger.info("received signal %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop.wait(1.0):
        pass
