"""Real processes for integration tests: a Celery worker and beat on the real broker.

The worker reads and writes the same PostgreSQL test database as the test, so
tests using these fixtures run with ``transactional_db`` (committed data).
These tests fail, never skip, when PostgreSQL or Redis is not configured.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def wait_until(
    predicate: Callable[[], object], *, timeout: float, interval: float = 0.2, what: str = ""
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def worker_database_url() -> str:
    """The test database's URL, for the worker processes and for a connection of a test's own."""
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("integration tests need PostgreSQL: set DATABASE_URL (make test does)")
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _broker_url() -> str:
    url = settings.REDIS_URL
    if not url:
        pytest.fail("integration tests need Redis: set REDIS_URL (make test does)")
    return url


@dataclass
class CeleryProcesses:
    """Handles on the worker (and optional beat) processes of one test."""

    worker: subprocess.Popen[bytes]
    beat: subprocess.Popen[bytes] | None
    log_dir: Path

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-6000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def _spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> subprocess.Popen:
    log = (log_dir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _wait_for_worker_ready(processes: CeleryProcesses, timeout: float = 60) -> None:
    """Block until the worker says it is ready; fail at once if a process exits."""
    log = processes.log_dir / "worker.log"
    deadline = time.monotonic() + timeout
    while b" ready." not in log.read_bytes():
        for process in (processes.worker, processes.beat):
            if process is not None and process.poll() is not None:
                pytest.fail(
                    f"a Celery process exited with {process.returncode}\n{processes.logs()}"
                )
        if time.monotonic() > deadline:
            pytest.fail(f"the Celery worker was not ready after {timeout}s\n{processes.logs()}")
        time.sleep(0.2)


@pytest.fixture
def celery_env(transactional_db, tmp_path: Path) -> dict[str, str]:
    broker = _broker_url()
    # Messages left by an earlier run would act on rows that no longer exist.
    redis.Redis.from_url(broker).flushdb()
    return {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": broker,
        "GATEWAY_VAR_DIR": str(tmp_path),
        # The worker writes batch bodies where this process reads them.
        "BATCH_STORAGE_DIR": str(settings.STORAGES["batches"]["OPTIONS"]["location"]),
        "DISPATCH_INTERVAL_SECONDS": "1",
        # Quick retries, and a circuit breaker that opens and probes in seconds.
        "DELIVERY_RETRY_SCHEDULE": "1,1,2,2,2,2,2",
        "DELIVERY_CIRCUIT_OPEN_SECONDS": "2",
        "DELIVERY_TIMEOUT_SECONDS": "5",
        "RECONCILIATION_INTERVAL_SECONDS": "2",
        "ALLOW_PRIVATE_ENDPOINTS": "true",
    }


@pytest.fixture
def start_celery(
    celery_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., CeleryProcesses]]:
    """Start a real worker (and, with ``beat=True``, beat); stopped after the test."""
    started: list[CeleryProcesses] = []

    def start(
        *, beat: bool = False, extra_env: dict[str, str] | None = None, concurrency: int = 2
    ) -> CeleryProcesses:
        env = {**celery_env, **(extra_env or {})}
        node = f"itest-{uuid.uuid4().hex[:8]}@%h"
        worker = _spawn(
            "worker",
            [
                "worker",
                "-Q",
                "default,delivery,build,stream",
                "-c",
                str(concurrency),
                "-n",
                node,
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
            env,
            tmp_path,
        )
        beat_process = None
        if beat:
            beat_process = _spawn(
                "beat",
                ["beat", "--loglevel", "INFO", "-s", str(tmp_path / "celerybeat-schedule")],
                env,
                tmp_path,
            )
        processes = CeleryProcesses(worker=worker, beat=beat_process, log_dir=tmp_path)
        started.append(processes)
        _wait_for_worker_ready(processes)
        return processes

    yield start
    for processes in started:
        for process in (processes.beat, processes.worker):
            if process is not None:
                _stop(process)
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            print(processes.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
