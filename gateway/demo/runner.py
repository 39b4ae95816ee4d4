"""Child processes of ``run_demo``: what to start, and starting, watching and stopping them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

from gateway.demo.seed import DemoSecrets
from gateway.simulator.server import HEALTH_PATH

# How long children get to finish in-flight work (a delivery, a request) on SIGTERM.
STOP_TIMEOUT_SECONDS = 20.0
SIMULATOR_POLL_INTERVAL = 10
# The simulators report impressions, which the gateway reconciles with its
# "impression" events only; counting the starts, quartiles and clicks of the
# synthetic traffic too would put every campaign-day far outside tolerance.
SIMULATOR_COUNT_EVENT_TYPES = "impression"


@dataclass(frozen=True)
class ChildSpec:
    """A process to run: a name (also its log file), its command line and extra environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # Polled to tell that the child is ready to serve, if it serves HTTP.
    ready_url: str | None = None
    # Started only once the initial exposures are loaded (or found already loaded).
    after_load: bool = False


@dataclass
class Child:
    """A running child process and the log file it writes to."""

    spec: ChildSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def name(self) -> str:
        return self.spec.name


def demo_children(
    demo: DemoSecrets,
    *,
    base_dir: Path,
    var_dir: Path,
    python: str = sys.executable,
) -> list[ChildSpec]:
    """Simulators first (so the first push finds them), then web, worker and beat.

    Beat waits for the initial load: its first dispatch cuts every window of
    the history at once, and an exposure committed after its window was cut
    goes to a late batch, which is only cut when the next window closes (up
    to an hour later with the demo's hourly windows).
    """
    manage = [python, str(base_dir / "manage.py")]
    celery = [python, "-m", "celery", "-A", "config"]
    specs = [_simulator_spec(demo, slug, manage=manage, var_dir=var_dir) for slug in demo.partners]
    return [
        *specs,
        ChildSpec(
            "web",
            [*manage, "runserver", f"127.0.0.1:{demo.web_port}", "--noreload"],
            ready_url=f"{demo.gateway_url}/admin/login/",
        ),
        ChildSpec(
            "worker",
            [
                *celery,
                "worker",
                "-Q",
                "default,delivery,build,stream",
                "--concurrency",
                "2",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
        ),
        ChildSpec("beat", [*celery, "beat", "--loglevel", "INFO"], after_load=True),
    ]


def _simulator_spec(demo: DemoSecrets, slug: str, *, manage: list[str], var_dir: Path) -> ChildSpec:
    partner = demo.partners[slug]
    argv = [
        *manage,
        "partner_simulator",
        f"--port={partner.simulator_port}",
        f"--time-zone={partner.time_zone}",
        f"--data-dir={var_dir / 'simulator' / slug}",
        f"--gateway-url={demo.gateway_url}",
        f"--report-interval={partner.report_interval_seconds}",
        f"--count-event-types={SIMULATOR_COUNT_EVENT_TYPES}",
        # "=" form: argparse would read a bare "-0.12" as an option.
        f"--bias={partner.report_bias}",
    ]
    # Push and stream partners only receive; a pull partner also downloads.
    if partner.mode == "pull":
        argv += ["--pull", f"--poll-interval={SIMULATOR_POLL_INTERVAL}"]
    return ChildSpec(
        slug,
        argv,
        # Secrets in the environment, not argv, so `ps` does not show them.
        env={
            "PARTNER_SIMULATOR_SECRET": partner.signing_secret,
            "PARTNER_SIMULATOR_API_KEY": partner.api_key,
        },
        ready_url=f"http://127.0.0.1:{partner.simulator_port}{HEALTH_PATH}",
    )


def port_available(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


PR_SET_PDEATHSIG = 1


def die_with_parent_hook() -> Callable[[], None] | None:
    """A pre-exec hook that makes a child get SIGTERM when run_demo dies (Linux only).

    Children run in their own session so Ctrl-C reaches only run_demo, which
    then stops them in order; this covers run_demo being killed outright.
    libc is loaded here, in the parent: after fork the child may only call it.
    """
    if sys.platform != "linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return hook


class Supervisor:
    """Starts children with their output in ``<log_dir>/<name>.log`` and stops them together."""

    def __init__(self, *, log_dir: Path, cwd: Path, base_env: Mapping[str, str]) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self.base_env = dict(base_env)
        self.children: list[Child] = []
        self._pre_exec = die_with_parent_hook()

    def start(self, spec: ChildSpec) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        log_file = log_path.open("ab")
        env = {**self.base_env, "PYTHONUNBUFFERED": "1", **spec.env}
        process = subprocess.Popen(
            spec.argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Safe after fork: the hook makes one prctl call, no imports or locks.
            preexec_fn=self._pre_exec,
        )
        child = Child(spec=spec, process=process, log_path=log_path, log_file=log_file)
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait_ready(self, child: Child, *, timeout: float, should_stop: Callable[[], bool]) -> bool:
        """Poll the child's ready URL until it answers below 500; False if it died or timed out."""
        if child.spec.ready_url is None:
            return child.process.poll() is None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not should_stop():
            if child.process.poll() is not None:
                return False
            with contextlib.suppress(requests.RequestException):
                if requests.get(child.spec.ready_url, timeout=2).status_code < 500:
                    return True
            time.sleep(0.5)
        return False

    def stop_all(self, *, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM every child (newest first), wait, then SIGKILL what is left."""
        for child in reversed(self.children):
            # The main process only: a Celery worker then finishes its tasks and
            # stops its pool itself (a warm shutdown).
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.process.wait(timeout=5)
            child.log_file.close()


def _signal_group(child: Child, signum: int) -> None:
    # The whole process group, so no Celery pool process outlives its parent.
    if child.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, signum)


def log_tail(path: Path, *, lines: int = 15) -> str:
    """The last lines of a log, to show why a child died without opening the file."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
