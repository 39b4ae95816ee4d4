"""The push side of a simulated partner: an HTTP server that receives signed batches.

Behaves like a careful real partner: bounded bodies, gzip, Standard Webhooks
signature check, idempotency by ``webhook-id``. A response plan injects faults
(``respond=[500, 200]``) so delivery retries can be tested end to end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gateway.simulator.bodies import (
    MAX_BODY_BYTES,
    BodyError,
    body_text,
    gunzip_limited,
    parse_ndjson,
)
from gateway.simulator.signatures import SignatureError, signature_verify, verification_keys
from gateway.simulator.store import BatchStore, batch_id_valid

logger = logging.getLogger("gateway.simulator")

# Only loopback: the simulator is a local test double, never a public service.
BIND_HOST = "127.0.0.1"
# Headers worth keeping in the request log; the rest is noise for assertions.
_LOGGED_HEADERS = (
    "content-type",
    "content-encoding",
    "content-length",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    # What the gateway says about the batch, beside the signed payload.
    "gateway-batch-sequence",
    "gateway-batch-kind",
    "gateway-batch-part",
    "gateway-batch-first-part",
    "gateway-supersedes",
)
STATS_PATH = "/_simulator/stats"
HEALTH_PATH = "/_simulator/health"


@dataclass(frozen=True)
class ReceivedRequest:
    """One POST as the simulator saw it and answered it."""

    received_at: datetime
    path: str
    headers: dict[str, str]
    status: int
    outcome: str  # accepted | duplicate | rejected | planned_failure
    webhook_id: str | None = None
    event_count: int = 0
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["received_at"] = self.received_at.isoformat()
        return data


@dataclass(frozen=True)
class PlannedStep:
    """How to answer one POST: a status, optionally with Retry-After, a reset, or a delay.

    Written as text in plans: ``503``; ``429:5`` (429 with ``Retry-After: 5``);
    ``reset`` (drop the connection with a TCP reset before reading anything
    into the store); ``stored-reset`` (store the batch, then reset: the partner
    has it but the gateway never hears so); ``sleep:2.5`` (answer normally
    after 2.5 s, e.g. beyond the gateway's timeout).
    """

    status: int = HTTPStatus.OK
    retry_after: str | None = None
    reset: bool = False
    store_first: bool = False
    sleep: float = 0.0

    @classmethod
    def parse(cls, step: int | str) -> PlannedStep:
        text = str(step).strip().lower()
        if text == "reset":
            return cls(reset=True)
        if text == "stored-reset":
            return cls(reset=True, store_first=True)
        if text.startswith("sleep:"):
            return cls(sleep=_non_negative(text.removeprefix("sleep:"), text))
        status, _, retry_after = text.partition(":")
        if not status.isdigit() or not 100 <= int(status) <= 599:
            raise ValueError(f"not a planned step: {step!r}")
        if retry_after and not retry_after.isdigit():
            raise ValueError(f"Retry-After must be whole seconds: {step!r}")
        return cls(status=int(status), retry_after=retry_after or None)


def _non_negative(value: str, step: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ValueError(f"sleep must be 0 to 3600 seconds: {step!r}")
    return seconds


class ResponsePlan:
    """Steps to answer the first POSTs with, in order; a plain 200 afterwards.

    A planned status of 300 or more is returned before anything is verified
    or stored, like a partner that is down; a planned 2xx is a normal answer
    with that status. See ``PlannedStep`` for resets and delays.
    """

    def __init__(self, steps: Iterable[int | str] = ()) -> None:
        self._pending = deque(PlannedStep.parse(step) for step in steps)
        self._lock = threading.Lock()

    def next_step(self) -> PlannedStep:
        with self._lock:
            return self._pending.popleft() if self._pending else PlannedStep()

    def next_status(self) -> int:
        return self.next_step().status

    def remaining(self) -> list[PlannedStep]:
        with self._lock:
            return list(self._pending)


@dataclass(frozen=True)
class SimulatorStats:
    """A snapshot of what the simulator received, stored and counted."""

    requests: list[ReceivedRequest]
    batch_ids: list[str]
    counts: dict[tuple[str, date], int]
    event_total: int
    uncounted_events: int

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": [request.as_json() for request in self.requests],
            "batch_ids": self.batch_ids,
            "counts": {f"{cmp}|{day.isoformat()}": n for (cmp, day), n in self.counts.items()},
            "event_total": self.event_total,
            "uncounted_events": self.uncounted_events,
        }


class _Rejection(Exception):
    """Ends the handling of a POST with an error answer."""

    def __init__(self, status: int, code: str, message: str, *, webhook_id: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.webhook_id = webhook_id


@dataclass
class _Outcome:
    """The answer decided for one POST, and what to record about it."""

    status: int
    outcome: str
    body: dict[str, Any]
    webhook_id: str | None = None
    event_count: int = 0
    error: str = ""
    retry_after: str | None = None
    # Drop the connection with a TCP reset instead of answering.
    reset: bool = False


class PartnerSimulator:
    """A push partner on 127.0.0.1: ``with PartnerSimulator(secret=...) as sim: sim.url``.

    ``port=0`` picks a free port; ``.port`` and ``.url`` are known after start().
    Accepted batches go to ``<data_dir>/batches/<webhook-id>.ndjson``; batches of
    an earlier run in the same directory are loaded and counted again on start.
    """

    def __init__(
        self,
        *,
        data_dir: Path | str | None = None,
        secret: str | None = None,
        time_zone: str = "UTC",
        port: int = 0,
        respond: Iterable[int | str] = (),
        delay: float = 0.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        store: BatchStore | None = None,
        request_log_size: int = 1000,
    ) -> None:
        if secret is not None:
            verification_keys(secret)  # fail at construction, not on the first request
        if store is None and data_dir is None:
            raise ValueError("give data_dir (or a store)")
        self.secret = secret
        self.store = store or BatchStore(data_dir=data_dir or "", time_zone=time_zone)
        self.plan = ResponsePlan(respond)
        self.delay = delay
        self.max_body_bytes = max_body_bytes
        self._requested_port = port
        self._requests: deque[ReceivedRequest] = deque(maxlen=request_log_size)
        self._requests_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle -----------------------------------------------------------

    def start(self) -> PartnerSimulator:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self.store.load()
        self._server = _Server((BIND_HOST, self._requested_port), _Handler, simulator=self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"partner-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.connections_end()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> PartnerSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{BIND_HOST}:{self.port}"

    # --- inspection -------------------------------------------------------------

    def stats(self) -> SimulatorStats:
        with self._requests_lock:
            requests = list(self._requests)
        return SimulatorStats(
            requests=requests,
            batch_ids=self.store.batch_ids(),
            counts=self.store.counts(),
            event_total=self.store.event_total(),
            uncounted_events=self.store.uncounted_events,
        )

    def wait_for_batches(self, count: int, *, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` batches are stored; False on timeout."""
        deadline = time.monotonic() + timeout
        while len(self.store.batch_ids()) < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    # --- request handling (called from server threads) ----------------------------

    def handle_post(self, *, headers: dict[str, str], body: bytes) -> _Outcome:
        """Decide the answer to one POST whose body has been read."""
        if self.delay > 0:
            time.sleep(self.delay)
        planned = self.plan.next_step()
        if planned.sleep:
            time.sleep(planned.sleep)
        if planned.reset and not planned.store_first:
            return _Outcome(
                status=0,
                outcome="planned_reset",
                body={},
                webhook_id=headers.get("webhook-id"),
                reset=True,
            )
        if planned.status >= 300:
            return _Outcome(
                status=planned.status,
                outcome="planned_failure",
                body={"error": "planned failure", "code": "planned_failure"},
                webhook_id=headers.get("webhook-id"),
                retry_after=planned.retry_after,
            )
        try:
            outcome = self._accept(headers=headers, body=body, status=planned.status)
        except _Rejection as exc:
            return _Outcome(
                status=exc.status,
                outcome="rejected",
                body={"error": str(exc), "code": exc.code},
                webhook_id=exc.webhook_id,
                error=f"{exc.code}: {exc}",
            )
        if planned.reset:
            # Stored, but the answer never reaches the gateway: it will retry,
            # and the retry must be recognised as a duplicate.
            outcome.reset = True
            outcome.outcome = f"{outcome.outcome}_then_reset"
        return outcome

    def _accept(self, *, headers: dict[str, str], body: bytes, status: int) -> _Outcome:
        webhook_id = headers.get("webhook-id")
        text = self._decoded_text(headers, body)
        if self.secret is None:
            raise _Rejection(401, "no_secret", "simulator has no signing secret configured")
        try:
            signature_verify(secret=self.secret, body=text, headers=headers)
        except SignatureError as exc:
            raise _Rejection(401, "invalid_signature", str(exc), webhook_id=webhook_id) from exc
        if not webhook_id or not batch_id_valid(webhook_id):
            raise _Rejection(400, "bad_webhook_id", "webhook-id is not a usable batch id")
        try:
            records = parse_ndjson(text)
        except BodyError as exc:
            raise _Rejection(exc.status, exc.code, str(exc), webhook_id=webhook_id) from exc
        stored = self.store.add(
            batch_id=webhook_id, body=text.encode(), records=records, source="push"
        )
        # A repeat is acknowledged so the sender stops retrying, but not counted twice.
        outcome = "accepted" if stored else "duplicate"
        return _Outcome(
            status=status,
            outcome=outcome,
            body={"status": outcome, "events": len(records)},
            webhook_id=webhook_id,
            event_count=len(records) if stored else 0,
        )

    def _decoded_text(self, headers: dict[str, str], body: bytes) -> str:
        encoding = headers.get("content-encoding", "identity").strip().lower()
        try:
            if encoding == "gzip":
                body = gunzip_limited(body, max_bytes=self.max_body_bytes)
            elif encoding not in ("", "identity"):
                raise _Rejection(415, "unsupported_encoding", f"Content-Encoding {encoding!r}")
            return body_text(body)
        except BodyError as exc:
            raise _Rejection(
                exc.status, exc.code, str(exc), webhook_id=headers.get("webhook-id")
            ) from exc

    def record(self, *, path: str, headers: dict[str, str], outcome: _Outcome) -> None:
        kept = {name: headers[name] for name in _LOGGED_HEADERS if name in headers}
        request = ReceivedRequest(
            received_at=datetime.now(tz=UTC),
            path=path,
            headers=kept,
            status=outcome.status,
            outcome=outcome.outcome,
            webhook_id=outcome.webhook_id,
            event_count=outcome.event_count,
            error=outcome.error,
        )
        with self._requests_lock:
            self._requests.append(request)
        _log_request(request)


def _log_request(request: ReceivedRequest) -> None:
    """One line per batch, the simulator's whole story in its log."""
    level = logging.INFO if request.status < 400 else logging.WARNING
    logger.log(
        level,
        "batch %s %s status=%s events=%s%s",
        request.webhook_id or "-",
        request.outcome,
        request.status,
        request.event_count,
        f" error={request.error}" if request.error else "",
    )


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its simulator."""

    daemon_threads = True
    # Re-binding a fixed demo port right after a restart must not fail on TIME_WAIT.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, *, simulator: PartnerSimulator):
        super().__init__(address, handler)
        self.simulator = simulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def connections_end(self) -> None:
        """End the connections kept open between requests, as a server process stopping does.

        Otherwise their threads would go on answering as the stopped simulator,
        to a client that keeps connections (the gateway does).
        """
        with self._open_lock:
            still_open = list(self._open)
        for connection in still_open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Reads the request, lets the simulator decide, writes a JSON answer."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's HTTP client expects
    server_version = "PartnerSimulator/1.0"
    # A sender that stalls mid-body must not hold a thread forever.
    timeout = 30

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == STATS_PATH:
            self._send_json(200, self.server.simulator.stats().as_json())
        elif path == HEALTH_PATH:
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, {"error": "not found", "code": "not_found"})

    def do_POST(self) -> None:
        simulator = self.server.simulator
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            body = self._read_body(simulator.max_body_bytes)
        except _Rejection as exc:
            # The body was not read, so the connection cannot be reused.
            self.close_connection = True
            outcome = _Outcome(
                status=exc.status,
                outcome="rejected",
                body={"error": str(exc), "code": exc.code},
                webhook_id=headers.get("webhook-id"),
                error=f"{exc.code}: {exc}",
            )
        else:
            outcome = self._handle_safely(simulator, headers, body)
        simulator.record(path=self.path, headers=headers, outcome=outcome)
        if outcome.reset:
            self._reset_connection()
            return
        extra = {"Retry-After": outcome.retry_after} if outcome.retry_after else {}
        self._send_json(outcome.status, outcome.body, headers=extra)

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST, not FIN: the
        # client sees "connection reset by peer", as from a crashing proxy.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    @staticmethod
    def _handle_safely(
        simulator: PartnerSimulator, headers: dict[str, str], body: bytes
    ) -> _Outcome:
        # A bug or a full disk must look like a partner outage (500, retried),
        # not like a dropped connection.
        try:
            return simulator.handle_post(headers=headers, body=body)
        except Exception as exc:
            logger.exception("batch %s could not be handled", headers.get("webhook-id", "-"))
            return _Outcome(
                status=500,
                outcome="rejected",
                body={"error": "internal error", "code": "internal_error"},
                webhook_id=headers.get("webhook-id"),
                error=f"internal_error: {exc}",
            )

    def _read_body(self, max_bytes: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _Rejection(411, "length_required", "send Content-Length, not chunked bodies")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            raise _Rejection(411, "length_required", "Content-Length is required")
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise _Rejection(400, "bad_length", "Content-Length is not a number") from exc
        if length < 0:
            raise _Rejection(400, "bad_length", "Content-Length is negative")
        if length > max_bytes:
            raise _Rejection(413, "body_too_large", f"body exceeds {max_bytes} bytes")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _Rejection(400, "short_body", "body is shorter than Content-Length")
        return body

    def _send_json(
        self, status: int, payload: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # Access lines go to debug; the one-line-per-batch log is the useful one.
        logger.debug("%s %s", self.address_string(), format % args)
