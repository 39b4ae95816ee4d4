"""run_demo's child processes: their command lines, and starting and stopping them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.demo.runner import (
    ChildSpec,
    Supervisor,
    demo_children,
    log_tail,
    port_available,
)
from gateway.demo.seed import DemoSecrets, PartnerSecrets, demo_seed


def _demo() -> DemoSecrets:
    return DemoSecrets(
        admin_password="pw",
        ingest_token="mgi_x",
        web_port=8650,
        partners={
            "nielsen-demo": PartnerSecrets(
                slug="nielsen-demo",
                mode="push",
                time_zone="America/New_York",
                simulator_port=8651,
                report_bias=0.03,
                signing_secret="whsec_push",
                api_key="mgk_push",
            ),
            "ias-demo": PartnerSecrets(
                slug="ias-demo",
                mode="pull",
                time_zone="Europe/London",
                simulator_port=8652,
                report_bias=-0.12,
                signing_secret="whsec_pull",
                api_key="mgk_pull",
            ),
            "dv-demo": PartnerSecrets(
                slug="dv-demo",
                mode="stream",
                time_zone="America/Los_Angeles",
                simulator_port=8653,
                report_bias=0.05,
                signing_secret="whsec_stream",
                api_key="mgk_stream",
                report_interval_seconds=5,
            ),
        },
    )


def test_the_demo_runs_three_simulators_then_web_worker_and_beat(tmp_path: Path) -> None:
    specs = demo_children(_demo(), base_dir=Path("/app"), var_dir=tmp_path, python="py")

    assert [s.name for s in specs] == [
        "nielsen-demo",
        "ias-demo",
        "dv-demo",
        "web",
        "worker",
        "beat",
    ]
    web, worker, beat = specs[3:]
    assert web.argv == ["py", "/app/manage.py", "runserver", "127.0.0.1:8650", "--noreload"]
    assert web.ready_url == "http://127.0.0.1:8650/admin/login/"
    assert worker.argv[:5] == ["py", "-m", "celery", "-A", "config"]
    assert "default,delivery,build,stream" in worker.argv and "--without-gossip" in worker.argv
    assert beat.argv[-3:] == ["beat", "--loglevel", "INFO"]


def test_only_beat_waits_for_the_initial_load(tmp_path: Path) -> None:
    specs = demo_children(_demo(), base_dir=Path("/app"), var_dir=tmp_path)

    # Its first dispatch must see the whole history committed, or the history
    # would go out in a late batch an hour later instead of in window batches.
    assert [s.name for s in specs if s.after_load] == ["beat"]


def test_without_redis_the_filesystem_broker_polls_ten_times_a_second(tmp_path: Path) -> None:
    # The demo's worker would otherwise wait up to a second per hop between tasks.
    env = {**os.environ, "REDIS_URL": "", "GATEWAY_VAR_DIR": str(tmp_path)}
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT, "
        "json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    url, transport, options = out.strip().split(" ", 2)

    assert url == "filesystem://"
    # kombu's filesystem transport with messages that appear whole (config/broker.py).
    assert transport == "config.broker:Transport"
    assert json.loads(options)["polling_interval"] == 0.1


@pytest.mark.django_db
def test_the_seeded_demo_starts_a_simulator_per_partner_on_its_port(tmp_path: Path) -> None:
    demo = demo_seed(var_dir=tmp_path, simulator_ports={"dv-demo": 9103})

    specs = demo_children(demo, base_dir=Path("/app"), var_dir=tmp_path)

    simulators = {s.name: s for s in specs if s.ready_url and "partner_simulator" in s.argv}
    assert sorted(simulators) == ["dv-demo", "ias-demo", "nielsen-demo"]
    assert "--port=9103" in simulators["dv-demo"].argv
    assert simulators["dv-demo"].ready_url == "http://127.0.0.1:9103/_simulator/health"


def test_the_push_simulator_reports_and_the_pull_simulator_also_pulls(tmp_path: Path) -> None:
    push, pull = demo_children(_demo(), base_dir=Path("/app"), var_dir=tmp_path)[:2]

    assert "--port=8651" in push.argv and "--pull" not in push.argv
    assert "--time-zone=America/New_York" in push.argv
    assert "--bias=0.03" in push.argv
    assert "--pull" in pull.argv and "--bias=-0.12" in pull.argv
    # Both report impressions, not every event of the synthetic funnel.
    assert "--count-event-types=impression" in push.argv
    assert "--count-event-types=impression" in pull.argv
    assert f"--data-dir={tmp_path / 'simulator' / 'ias-demo'}" in pull.argv
    assert "--gateway-url=http://127.0.0.1:8650" in pull.argv
    assert "--report-interval=30" in push.argv and "--report-interval=30" in pull.argv


def test_the_stream_simulator_receives_pushes_and_reports_often(tmp_path: Path) -> None:
    stream = demo_children(_demo(), base_dir=Path("/app"), var_dir=tmp_path)[2]

    assert stream.name == "dv-demo"
    assert "--port=8653" in stream.argv and "--pull" not in stream.argv
    assert "--time-zone=America/Los_Angeles" in stream.argv
    assert "--bias=0.05" in stream.argv and "--report-interval=5" in stream.argv
    assert stream.env == {
        "PARTNER_SIMULATOR_SECRET": "whsec_stream",
        "PARTNER_SIMULATOR_API_KEY": "mgk_stream",
    }


def test_simulator_secrets_go_in_the_environment_never_on_the_command_line(
    tmp_path: Path,
) -> None:
    for spec in demo_children(_demo(), base_dir=Path("/app"), var_dir=tmp_path):
        assert not any("whsec_" in arg or "mgk_" in arg for arg in spec.argv)
    push = demo_children(_demo(), base_dir=Path("/app"), var_dir=tmp_path)[0]
    assert push.env == {
        "PARTNER_SIMULATOR_SECRET": "whsec_push",
        "PARTNER_SIMULATOR_API_KEY": "mgk_push",
    }


def test_a_bound_port_is_reported_unavailable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        assert not port_available(port)
    assert port_available(port)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_children_log_to_their_file_and_stop_together(tmp_path: Path) -> None:
    supervisor = Supervisor(log_dir=tmp_path / "log", cwd=tmp_path, base_env=os.environ)
    sleeper = supervisor.start(
        ChildSpec("sleeper", _python("print('up', flush=True); import time; time.sleep(60)"))
    )
    ignorer = supervisor.start(
        ChildSpec(
            "stubborn",
            _python(
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(60)",
            ),
        )
    )
    deadline = time.monotonic() + 10
    while "ready" not in log_tail(ignorer.log_path) and time.monotonic() < deadline:
        time.sleep(0.05)

    started = time.monotonic()
    supervisor.stop_all(timeout=1.0)

    assert sleeper.process.returncode is not None
    # SIGTERM ignored: killed after the timeout.
    assert ignorer.process.returncode == -9
    assert time.monotonic() - started < 10
    assert "up" in (tmp_path / "log" / "sleeper.log").read_text()


def test_a_child_that_exits_is_noticed(tmp_path: Path) -> None:
    supervisor = Supervisor(log_dir=tmp_path, cwd=tmp_path, base_env=os.environ)
    quitter = supervisor.start(ChildSpec("quitter", _python("raise SystemExit(3)")))
    supervisor.start(ChildSpec("sleeper", _python("import time; time.sleep(60)")))
    try:
        deadline = time.monotonic() + 10
        while supervisor.first_exited() is None and time.monotonic() < deadline:
            time.sleep(0.05)

        assert supervisor.first_exited() is quitter
        assert quitter.process.returncode == 3
        assert not supervisor.wait_ready(quitter, timeout=1, should_stop=lambda: False)
    finally:
        supervisor.stop_all(timeout=2)


def test_a_child_with_a_ready_url_is_ready_once_it_answers(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import http.server as h; "
        f"h.HTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler).serve_forever()"
    )
    supervisor = Supervisor(log_dir=tmp_path, cwd=tmp_path, base_env=os.environ)
    child = supervisor.start(
        ChildSpec("http", _python(code), ready_url=f"http://127.0.0.1:{port}/")
    )
    try:
        assert supervisor.wait_ready(child, timeout=15, should_stop=lambda: False)
    finally:
        supervisor.stop_all(timeout=2)


def test_log_tail_returns_the_last_lines_or_nothing(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))

    assert log_tail(log, lines=2) == "line 98\nline 99"
    assert log_tail(tmp_path / "missing.log") == ""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_the_die_with_parent_hook_is_available_on_linux() -> None:
    from gateway.demo.runner import die_with_parent_hook

    assert die_with_parent_hook() is not None
