"""Sends exposures through the real ingest API, as one of our ad servers would."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

logger = logging.getLogger("gateway.demo")

INGEST_PATH = "/api/v1/exposures"
# The API takes up to 10 000 records per request; smaller requests keep each
# database transaction short, which matters on SQLite with a worker writing too.
DEFAULT_CHUNK_SIZE = 2000


class IngestFailed(RuntimeError):
    """The ingest API refused a whole request (credentials, size, framing, server error)."""


def ndjson_gzip(records: Iterable[dict[str, Any]]) -> bytes:
    """Records as gzip-compressed NDJSON, one compact JSON object per line."""
    lines = (json.dumps(record, separators=(",", ":")) for record in records)
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6)


@dataclass
class IngestTotals:
    """Sums of the ingest API's per-request answers, plus the first few row errors."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    requests: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, answer: dict[str, Any]) -> None:
        self.accepted += int(answer.get("accepted", 0))
        self.duplicate += int(answer.get("duplicate", 0))
        self.rejected += int(answer.get("rejected", 0))
        self.requests += 1
        # A few are enough to diagnose a generator bug; thousands would flood the log.
        self.errors.extend(answer.get("errors", [])[: max(0, 5 - len(self.errors))])


class IngestClient:
    """POSTs gzip NDJSON to ``{gateway_url}/api/v1/exposures`` with an ingest token."""

    def __init__(
        self,
        *,
        gateway_url: str,
        token: str,
        session: requests.Session | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.url = gateway_url.rstrip("/") + INGEST_PATH
        self.token = token
        self.session = session or requests.Session()
        self.timeout = timeout

    def post(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """One request; returns the 202 answer or raises IngestFailed."""
        try:
            response = self.session.post(
                self.url,
                data=ndjson_gzip(records),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/x-ndjson",
                    "Content-Encoding": "gzip",
                },
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise IngestFailed(f"POST {self.url} failed: {exc}") from exc
        if response.status_code != 202:
            raise IngestFailed(
                f"POST {self.url}: HTTP {response.status_code} {response.text[:500]}"
            )
        return response.json()


def exposures_load(
    *,
    client: IngestClient,
    records: Sequence[dict[str, Any]],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    should_stop: Callable[[], bool] = lambda: False,
) -> IngestTotals:
    """Send ``records`` in chunks; stops early (between chunks) when ``should_stop()``."""
    totals = IngestTotals()
    for start in range(0, len(records), chunk_size):
        if should_stop():
            break
        totals.add(client.post(records[start : start + chunk_size]))
    return totals
