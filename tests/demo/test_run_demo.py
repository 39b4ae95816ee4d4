"""``run_demo`` failing early and clearly, before any child process is started."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from gateway.demo.loader import IngestTotals
from gateway.demo.management.commands.run_demo import _child_failure, _totals_line
from gateway.demo.runner import ChildSpec, Supervisor

pytestmark = pytest.mark.django_db


def test_a_busy_port_stops_the_demo_before_seeding(tmp_path: Path, settings: Settings) -> None:
    settings.VAR_DIR = tmp_path
    settings.BROKER_DIR = tmp_path / "broker"
    handler_before = signal.getsignal(signal.SIGINT)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        # Only our port is asserted: a demo running on this machine may hold the defaults too.
        with pytest.raises(CommandError, match=f"Port\\(s\\) ({port}|.*, {port})\\b.* in use"):
            call_command("run_demo", "--web-port", str(port))

    assert not (tmp_path / "demo.json").exists()
    # The command's signal handlers do not outlive it.
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_a_dead_child_is_reported_with_its_exit_status_and_log_tail(tmp_path: Path) -> None:
    supervisor = Supervisor(log_dir=tmp_path, cwd=tmp_path, base_env=os.environ)
    child = supervisor.start(
        ChildSpec(
            "web", [sys.executable, "-c", "print('port already in use'); raise SystemExit(2)"]
        )
    )
    child.process.wait(timeout=10)
    supervisor.stop_all(timeout=1)

    message = str(_child_failure(child, waiting=False))

    assert message.startswith("web exited with status 2")
    assert "port already in use" in message


def test_the_load_summary_shows_the_first_rejection() -> None:
    totals = IngestTotals(accepted=9, rejected=1, requests=1, errors=[{"index": 3}])

    line = _totals_line(totals)

    assert "accepted=9 duplicate=0 rejected=1" in line
    assert "first rejection: {'index': 3}" in line
