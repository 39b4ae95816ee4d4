"""Partner reports: what the simulated partner counted, posted back to the gateway."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import requests

from gateway.simulator.store import BatchStore

logger = logging.getLogger("gateway.simulator")

REPORTS_PATH = "/api/v1/partner/reports"
REPORT_METRIC = "impressions"
# The events that metric counts: an impression is one event type among starts,
# quartiles, completes and clicks, and the gateway compares the partner's
# impressions with its "impression" events only (reconciliation.metrics).
REPORT_EVENT_TYPES = frozenset({"impression"})
# Rows per request: a long-running demo accumulates many campaign-days.
REPORT_CHUNK_ROWS = 500


class ReportError(RuntimeError):
    """The gateway did not accept a report."""


def report_rows(
    counts: Mapping[tuple[str, date], int], *, bias: float = 0.0, metric: str = REPORT_METRIC
) -> list[dict[str, Any]]:
    """Report rows for ``counts``, each value skewed by ``bias`` (0.03 = partner counts 3 % more).

    Real partners never count exactly what was sent (their own filtering,
    late data); the bias lets the demo show reconciliation inside and outside
    tolerance.
    """
    return [
        {
            "campaign_id": campaign_id,
            "date": day.isoformat(),
            "metric": metric,
            "value": max(0, round(count * (1 + bias))),
        }
        for (campaign_id, day), count in sorted(counts.items())
    ]


@dataclass(frozen=True)
class ReportResult:
    """How many rows a report sent and the status of the last request."""

    rows: int
    status: int | None


class Reporter:
    """Posts the store's counts to ``{gateway_url}/api/v1/partner/reports``.

    The gateway replaces earlier values for the same key, so posting the full
    running totals every time is idempotent and self-correcting.
    """

    def __init__(
        self,
        *,
        store: BatchStore,
        gateway_url: str,
        api_key: str,
        bias: float = 0.0,
        # None counts every event type.
        event_types: Collection[str] | None = REPORT_EVENT_TYPES,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.url = gateway_url.rstrip("/") + REPORTS_PATH
        self.api_key = api_key
        self.bias = bias
        self.event_types = event_types
        self.session = session or requests.Session()
        self.timeout = timeout

    def rows(self) -> list[dict[str, Any]]:
        # Nobody has counted tomorrow: an event stamped slightly in the future
        # (clock skew) waits for its day rather than failing the whole report.
        today = datetime.now(tz=self.store.tz).date()
        counts = self.store.counts(event_types=self.event_types)
        current = {key: n for key, n in counts.items() if key[1] <= today}
        return report_rows(current, bias=self.bias)

    def report_once(self) -> ReportResult:
        rows = self.rows()
        status = None
        for start in range(0, len(rows), REPORT_CHUNK_ROWS):
            status = self._post(rows[start : start + REPORT_CHUNK_ROWS])
        if rows:
            logger.info("reported %s campaign-days to %s status=%s", len(rows), self.url, status)
        return ReportResult(rows=len(rows), status=status)

    def _post(self, rows: list[dict[str, Any]]) -> int:
        response = self.session.post(
            self.url,
            json=rows,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=self.timeout,
        )
        if not response.ok:
            raise ReportError(f"report rejected: HTTP {response.status_code} {response.text[:300]}")
        return response.status_code
