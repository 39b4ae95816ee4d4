"""``manage.py partner_simulator``: options, and a real subprocess receiving a batch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from gateway.simulator.management.commands.partner_simulator import (
    SECRET_ENV,
    parse_event_types,
    parse_plan,
)
from tests.simulator.conftest import event, push

ROOT = Path(__file__).resolve().parents[2]


def test_plans_are_parsed_from_a_comma_list() -> None:
    assert parse_plan("500, 503,200") == ["500", "503", "200"]
    assert parse_plan("429:5,reset,stored-reset,sleep:2.5") == [
        "429:5",
        "reset",
        "stored-reset",
        "sleep:2.5",
    ]
    assert parse_plan("") == []


@pytest.mark.parametrize(
    "value", ["abc", "99", "600", "500,x", "429:soon", "sleep:-1", "sleep:x", "sleep:99999"]
)
def test_anything_but_known_steps_is_refused(value: str) -> None:
    with pytest.raises(CommandError):
        parse_plan(value)


def test_event_types_are_parsed_from_a_comma_list_and_all_means_every_type() -> None:
    assert parse_event_types("impression") == {"impression"}
    assert parse_event_types("impression, click,") == {"impression", "click"}
    assert parse_event_types("all") is None


@pytest.mark.parametrize("value", ["", " , "])
def test_no_event_types_is_refused(value: str) -> None:
    with pytest.raises(CommandError):
        parse_event_types(value)


@pytest.mark.parametrize(
    "argv",
    [
        ["--time-zone", "Mars/Olympus_Mons"],
        ["--pull"],
        ["--report-interval", "5"],
        ["--delay", "-1"],
        ["--count-event-types="],
    ],
)
def test_bad_option_combinations_fail_before_anything_starts(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARTNER_SIMULATOR_API_KEY", raising=False)
    with pytest.raises(CommandError):
        call_command("partner_simulator", *argv)


@pytest.fixture
def running_command(tmp_path: Path, secret: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "partner_simulator",
            "--port=0",
            f"--data-dir={tmp_path}",
            "--time-zone=Europe/London",
            "--respond=503",
        ],
        cwd=ROOT,
        env={**os.environ, SECRET_ENV: secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, _wait_for_url(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def _wait_for_url(process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return match.group(1)
        if not line and process.poll() is not None:
            break
    pytest.fail("the simulator command did not start")


def test_the_command_serves_batches_logs_each_and_stops_cleanly_on_sigterm(
    running_command: tuple[subprocess.Popen[str], str], secret: str
) -> None:
    process, url = running_command

    planned = push(url, secret, [event()], msg_id="cmd-batch")
    accepted = push(url, secret, [event()], msg_id="cmd-batch")
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=15)

    assert (planned.status_code, accepted.status_code) == (503, 200)
    assert process.returncode == 0
    assert "batch cmd-batch planned_failure status=503" in output
    assert "batch cmd-batch accepted status=200 events=1" in output
    assert "partner simulator stopped" in output
