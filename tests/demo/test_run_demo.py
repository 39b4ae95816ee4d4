"""``run_demo`` failing early and clearly, before any child process is started."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from gateway.demo.catalog import DEMO_PARTNERS
from gateway.demo.loader import IngestTotals
from gateway.demo.management.commands import run_demo
from gateway.demo.management.commands.run_demo import _child_failure, _totals_line, partner_line
from gateway.demo.runner import ChildSpec, Supervisor
from gateway.demo.seed import DemoSecrets, PartnerSecrets

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
        with pytest.raises(
            CommandError, match=f"Port\\(s\\) ({port}|.*, {port})\\b.* in use"
        ) as err:
            call_command("run_demo", "--web-port", str(port))

    assert "--dv-demo-port" in str(err.value)

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


# --- the order of start-up ------------------------------------------------------------


class _FakeSupervisor:
    """Records what run_demo starts and when, instead of starting processes."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.children: list[SimpleNamespace] = []

    def start(self, spec: ChildSpec) -> SimpleNamespace:
        self.events.append(f"start {spec.name}")
        child = SimpleNamespace(name=spec.name, spec=spec)
        self.children.append(child)
        return child

    def wait_ready(self, child: SimpleNamespace, **_: Any) -> bool:
        return True

    def first_exited(self) -> None:
        return None

    def stop_all(self) -> None:
        self.events.append("stop")


def _secrets() -> DemoSecrets:
    return DemoSecrets(
        admin_password="pw",
        ingest_token="mgi_x",
        partners={
            spec.slug: PartnerSecrets(
                slug=spec.slug,
                mode=spec.mode,
                time_zone=spec.reporting_time_zone,
                simulator_port=spec.simulator_port,
                report_bias=spec.report_bias,
            )
            for spec in DEMO_PARTNERS
        },
    )


@pytest.mark.parametrize("load_initial", [True, False])
def test_beat_starts_only_after_the_initial_load(
    load_initial: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events: list[str] = []

    def fake_load(**_: Any) -> IngestTotals:
        events.append("load")
        return IngestTotals(accepted=5, requests=1)

    monkeypatch.setattr(
        run_demo.Command, "_prepare", lambda self, var_dir, options: (_secrets(), load_initial)
    )
    monkeypatch.setattr(run_demo, "Supervisor", lambda **_: _FakeSupervisor(events))
    monkeypatch.setattr(run_demo, "exposures_load", fake_load)
    monkeypatch.setattr(
        run_demo.Command, "_trickle", lambda self, *args, **kwargs: events.append("trickle")
    )

    call_command("run_demo", "--exposures", "5")

    before_load = ["nielsen-demo", "ias-demo", "dv-demo", "web", "worker"]
    expected = [f"start {name}" for name in before_load]
    expected += ["load"] if load_initial else []
    expected += ["start beat", "trickle", "stop"]
    assert events == expected
    out = capsys.readouterr().out
    assert "stream" in out and "late" in out and "window" in out


def test_the_banner_line_says_how_each_partner_receives_exposures() -> None:
    lines = {
        spec.slug: partner_line(spec, _secrets().partners[spec.slug]) for spec in DEMO_PARTNERS
    }

    assert "push, 1 h windows" in lines["nielsen-demo"] and "+3%" in lines["nielsen-demo"]
    assert "pull, 1 h windows" in lines["ias-demo"] and "-12%" in lines["ias-demo"]
    assert "stream, micro-batches after 250 ms" in lines["dv-demo"]
    assert "port 8103" in lines["dv-demo"]
