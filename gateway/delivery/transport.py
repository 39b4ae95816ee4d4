"""HTTP transport for push delivery: one POST in, one small result out. No Django import.

The transport never raises for network trouble and never decides about
retries: it reports what happened, and ``gateway.delivery.services`` turns
that into a state change.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import requests

USER_AGENT = "measurement-gateway/0.1"
# Only the start of a partner's response is kept; reading stops there so a
# huge or endless response cannot exhaust a worker's memory.
EXCERPT_CHARS = 1000
_EXCERPT_READ_BYTES = EXCERPT_CHARS * 4


class NetworkError(StrEnum):
    """Why no HTTP status came back."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    # The request could not even be formed (bad URL, bad header): retrying is pointless.
    INVALID_REQUEST = "invalid_request"


@dataclass(frozen=True)
class TransportResult:
    """What one POST produced: a status, or a network error, plus timing and the reply's start."""

    status: int | None
    duration_ms: int
    response_excerpt: str = ""
    error: str = ""
    network_error: NetworkError | None = None
    retry_after: str | None = None


def _excerpt(response: requests.Response) -> tuple[str, str]:
    """The first characters of the body, and an error if reading it failed."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=1024):
            chunks.append(chunk)
            size += len(chunk)
            if size >= _EXCERPT_READ_BYTES:
                break
    except requests.RequestException as exc:
        return b"".join(chunks).decode("utf-8", "replace")[:EXCERPT_CHARS], f"reading reply: {exc}"
    return b"".join(chunks).decode("utf-8", "replace")[:EXCERPT_CHARS], ""


def post(
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    session: requests.Session | None = None,
) -> TransportResult:
    """POST ``body`` to ``url`` without following redirects; never raises for network errors."""
    sender = session or requests
    all_headers = {"User-Agent": USER_AGENT, **headers}
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        # A redirect is reported as its 3xx status: following it could carry
        # signed data to a host nobody validated.
        response = sender.post(
            url,
            data=body,
            headers=all_headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout as exc:
        return TransportResult(
            status=None,
            duration_ms=elapsed_ms(),
            error=str(exc),
            network_error=NetworkError.TIMEOUT,
        )
    except requests.ConnectionError as exc:
        return TransportResult(
            status=None,
            duration_ms=elapsed_ms(),
            error=str(exc),
            network_error=NetworkError.CONNECTION,
        )
    except (requests.RequestException, ValueError) as exc:
        return TransportResult(
            status=None,
            duration_ms=elapsed_ms(),
            error=str(exc),
            network_error=NetworkError.INVALID_REQUEST,
        )
    with response:
        excerpt, read_error = _excerpt(response)
    return TransportResult(
        status=response.status_code,
        duration_ms=elapsed_ms(),
        response_excerpt=excerpt,
        error=read_error,
        retry_after=response.headers.get("Retry-After"),
    )
