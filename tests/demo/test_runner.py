"""run_demo's child processes: their command lines, and starting and stopping them."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from gateway.demo.runner import ChildSpec, Supervisor, demo_children, log_tail, port_available
from gateway.demo.seed import DemoSecrets, PartnerSecrets


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
        },
    )


def test_the_demo_runs_two_simulators_then_web_worker_and_beat(tmp_path: Path) -> None:
    specs = demo_children(_demo(), base_dir=Path("/app"), var_dir=tmp_path, python="py")

    assert [s.name for s in specs] == ["nielsen-demo", "ias-demo", "web", "worker", "beat"]
    web, worker, beat = specs[2:]
    assert web.argv == ["py", "/app/manage.py", "runserver", "127.0.0.1:8650", "--noreload"]
    assert web.ready_url == "http://127.0.0.1:8650/admin/login/"
    assert worker.argv[:5] == ["py", "-m", "celery", "-A", "config"]
    assert "default,delivery,build,stream" in worker.argv and "--without-gossip" in worker.argv
    assert beat.argv[-3:] == ["beat", "--loglevel", "INFO"]


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
