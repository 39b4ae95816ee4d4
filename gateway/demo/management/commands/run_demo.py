"""``manage.py run_demo``: the whole gateway, three partner simulators and live traffic.

Migrates, seeds, starts the simulators, web and the Celery worker as child
processes (logs in var/log/), loads synthetic exposures through the real
ingest API, starts Celery beat, then keeps a trickle of new ones flowing until
Ctrl-C or SIGTERM. If any child dies, the others are stopped and the command
fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from argparse import ArgumentParser
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import timezone

from gateway.demo.catalog import DEMO_PARTNERS, HISTORY_DAYS, DemoPartner
from gateway.demo.loader import IngestClient, IngestFailed, IngestTotals, exposures_load
from gateway.demo.options import add_port_arguments, seed_failure, simulator_ports
from gateway.demo.runner import (
    Child,
    ChildSpec,
    Supervisor,
    demo_children,
    log_tail,
    port_available,
)
from gateway.demo.seed import DemoSecrets, PartnerSecrets, demo_file_path, demo_seed
from gateway.demo.synthetic import ExposureGenerator
from gateway.ingest.models import Exposure

READY_TIMEOUT_SECONDS = 90.0


class ChildDied(CommandError):
    """A child process ended on its own: the demo cannot go on without it."""


class Command(BaseCommand):
    """Runs the demo in the foreground; Ctrl-C stops every process it started."""

    help = (
        "Start the gateway (web, Celery worker and beat) with three partner simulators and "
        "synthetic traffic, on SQLite and the filesystem broker unless configured otherwise."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_port_arguments(parser)
        parser.add_argument("--exposures", type=int, default=10_000, help="initial load size")
        parser.add_argument("--seed", type=int, default=42, help="random seed of the data")
        parser.add_argument("--trickle", type=int, default=20, help="live events per tick; 0 = off")
        parser.add_argument("--trickle-interval", type=float, default=5.0)
        parser.add_argument(
            "--reload",
            action="store_true",
            help="load the initial exposures even if the database already has some",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with _stop_on_signals() as stop:
            self._run(stop, options)

    def _run(self, stop: threading.Event, options: dict[str, Any]) -> None:
        var_dir = Path(settings.VAR_DIR)
        demo, load_initial = self._prepare(var_dir, options)
        if stop.is_set():
            return
        supervisor = Supervisor(
            log_dir=var_dir / "log", cwd=Path(settings.BASE_DIR), base_env=os.environ
        )
        specs = demo_children(
            demo,
            base_dir=Path(settings.BASE_DIR),
            var_dir=var_dir,
        )
        try:
            self._start_children(
                supervisor, [s for s in specs if not s.after_load], var_dir=var_dir, stop=stop
            )
            if stop.is_set():
                return
            client = IngestClient(gateway_url=demo.gateway_url, token=demo.ingest_token)
            if load_initial:
                self._load(client, options, stop=stop)
            if stop.is_set():
                return
            # Beat's first dispatch now finds the whole history committed.
            self._start_children(
                supervisor, [s for s in specs if s.after_load], var_dir=var_dir, stop=stop
            )
            if stop.is_set():
                return
            self._banner(demo, supervisor, var_dir=var_dir)
            self._trickle(client, supervisor, options, stop=stop)
        finally:
            self._say("Stopping all processes...")
            supervisor.stop_all()
            self._say("Stopped.")

    # --- steps ----------------------------------------------------------------------

    def _prepare(self, var_dir: Path, options: dict[str, Any]) -> tuple[DemoSecrets, bool]:
        """Migrate and seed; returns the demo secrets and whether to load initial data."""
        _prepare_directories(var_dir)
        self._say("Migrating the database...")
        call_command("migrate", interactive=False, verbosity=0)
        demo = self._seed(var_dir, web_port=options["web_port"], ports=simulator_ports(options))
        load_initial = options["reload"] or not Exposure.objects.exists()
        if not load_initial:
            self._say("The database already has exposures; skipping the initial load (--reload).")
        # Children open their own connections; SQLite must not see ours held open.
        connections.close_all()
        return demo, load_initial

    def _seed(self, var_dir: Path, *, web_port: int, ports: dict[str, int]) -> DemoSecrets:
        wanted = [web_port, *ports.values()]
        busy = [port for port in wanted if not port_available(port)]
        if busy:
            port_options = ", ".join(f"--{p.slug}-port" for p in DEMO_PARTNERS)
            raise CommandError(
                f"Port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use; "
                "is another demo running? Stop it, or choose others with --web-port, "
                f"{port_options}."
            )
        self._say("Seeding demo partners and credentials...")
        try:
            return demo_seed(var_dir=var_dir, web_port=web_port, simulator_ports=ports)
        except ValidationError as exc:
            raise seed_failure(exc) from exc

    def _start_children(
        self,
        supervisor: Supervisor,
        specs: list[ChildSpec],
        *,
        var_dir: Path,
        stop: threading.Event,
    ) -> None:
        """Start ``specs``, then wait until each is ready (or stop is requested)."""
        started = []
        for spec in specs:
            started.append(supervisor.start(spec))
            self._say(f"Started {spec.name} (log: {var_dir / 'log' / spec.name}.log)")
        for child in started:
            ready = supervisor.wait_ready(
                child, timeout=READY_TIMEOUT_SECONDS, should_stop=stop.is_set
            )
            if stop.is_set():
                return
            if not ready:
                raise _child_failure(child, waiting=True)

    def _load(
        self, client: IngestClient, options: dict[str, Any], *, stop: threading.Event
    ) -> None:
        count = options["exposures"]
        self._say(f"Loading {count} synthetic exposures through the ingest API...")
        generator = ExposureGenerator(seed=options["seed"], now=timezone.now())
        try:
            totals = exposures_load(
                client=client, records=generator.exposures(count), should_stop=stop.is_set
            )
        except IngestFailed as exc:
            raise CommandError(f"Initial load failed: {exc}") from exc
        self._say(_totals_line(totals))

    def _trickle(
        self,
        client: IngestClient,
        supervisor: Supervisor,
        options: dict[str, Any],
        *,
        stop: threading.Event,
    ) -> None:
        """Live traffic until stopped; checks every second that all children are alive."""
        generator = ExposureGenerator(seed=options["seed"] + 1, now=timezone.now(), listeners=500)
        interval = max(1.0, options["trickle_interval"])
        next_tick = 0.0
        elapsed = 0.0
        while not stop.wait(1.0):
            dead = supervisor.first_exited()
            if dead is not None:
                raise _child_failure(dead, waiting=False)
            elapsed += 1.0
            if options["trickle"] > 0 and elapsed >= next_tick:
                next_tick = elapsed + interval
                self._trickle_once(client, generator, options["trickle"])

    def _trickle_once(self, client: IngestClient, generator: ExposureGenerator, count: int) -> None:
        try:
            client.post(generator.live(count, now=timezone.now()))
        except IngestFailed as exc:
            # Live traffic is best effort: the next tick tries again.
            self.stderr.write(f"Trickle failed: {exc}")

    # --- output -----------------------------------------------------------------------

    def _banner(self, demo: DemoSecrets, supervisor: Supervisor, *, var_dir: Path) -> None:
        logs = ", ".join(f"{child.name}.log" for child in supervisor.children)
        specs = {spec.slug: spec for spec in DEMO_PARTNERS}
        partners = "\n".join(
            partner_line(specs[slug], p) for slug, p in demo.partners.items() if slug in specs
        )
        self.stdout.write(
            self.style.SUCCESS("\nMeasurement Gateway demo is running.\n")
            + f"  Admin:       {demo.admin_url}\n"
            f"  Username:    {demo.admin_username}\n"
            f"  Password:    {demo.admin_password}\n"
            f"  Secrets:     {demo_file_path(var_dir)} (signing secrets, API keys, ingest token)\n"
            f"  Logs:        {var_dir / 'log'}/ ({logs})\n"
            f"  Partners (simulator stats at http://127.0.0.1:<port>/_simulator/stats):\n"
            f"{partners}\n"
            f"{WHAT_TO_LOOK_AT}"
            "Live traffic keeps arriving; press Ctrl-C to stop everything.\n"
        )

    def _say(self, message: str) -> None:
        self.stdout.write(message)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, so every wait can end cleanly; restores handlers."""
    stop = threading.Event()

    def _set(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, _set) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _prepare_directories(var_dir: Path) -> None:
    (var_dir / "log").mkdir(parents=True, exist_ok=True)
    # kombu's filesystem transport does not create its folder.
    if not settings.REDIS_URL:
        Path(settings.BROKER_DIR).mkdir(parents=True, exist_ok=True)


def _child_failure(child: Child, *, waiting: bool) -> ChildDied:
    code = child.process.poll()
    what = (
        f"{child.name} did not become ready"
        if waiting and code is None
        else f"{child.name} exited with status {code}"
    )
    tail = log_tail(child.log_path)
    return ChildDied(f"{what}; last lines of {child.log_path}:\n{tail}")


WHAT_TO_LOOK_AT = (
    "  Admin > Delivery > Batches, by kind:\n"
    f"    window  the {HISTORY_DAYS}-day history within a minute (one batch per feed and hour),\n"
    "            then one per hour, a few seconds after the hour\n"
    "    stream  live events, at the streaming partner's simulator within about a second\n"
    "    late    live events that arrived after their hour's window was cut (they arrive up to\n"
    "            2 minutes after they occur), cut when the next window closes: at most an hour\n"
    "            later, so the first one appears up to two hours after the start\n"
    "  Admin > Reconciliation > Discrepancies: partner counts against what each was delivered.\n"
)


def partner_line(spec: DemoPartner, partner: PartnerSecrets) -> str:
    """One banner line: how the partner receives exposures and where its simulator is."""
    if spec.mode == "stream":
        how = f"stream, micro-batches after {spec.stream_max_delay_ms} ms, live traffic only"
    else:
        how = f"{spec.mode}, {_duration(spec.batch_window_seconds)} windows, history and live"
    return (
        f"    {spec.slug}: {how}; simulator on port {partner.simulator_port}, "
        f"reports {partner.report_bias:+.0%}"
    )


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _totals_line(totals: IngestTotals) -> str:
    line = (
        f"Loaded in {totals.requests} requests: accepted={totals.accepted} "
        f"duplicate={totals.duplicate} rejected={totals.rejected}"
    )
    if totals.errors:
        line += f"\n  first rejection: {totals.errors[0]}"
    return line
