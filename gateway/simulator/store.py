"""Where the simulator keeps what it accepted: batch files plus counts per campaign and day."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.simulator.bodies import BodyError, body_text, parse_ndjson

# Batch ids come from a request header and become file names, so only a
# conservative alphabet is accepted (no separators, no leading dot).
_BATCH_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# (campaign_id, day in the partner's time zone, event_type or None)
CountKey = tuple[str, date, str | None]


def batch_id_valid(batch_id: str) -> bool:
    return bool(_BATCH_ID_RE.match(batch_id))


def event_day(occurred_at: str, tz: ZoneInfo) -> date:
    """The calendar day of an ISO 8601 instant in ``tz``; a naive instant is taken as UTC."""
    moment = datetime.fromisoformat(occurred_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).date()


@dataclass(frozen=True)
class StoredBatch:
    """One accepted batch: where its body is and how many events it held."""

    batch_id: str
    path: Path
    event_count: int
    stored_at: datetime
    source: str


class BatchStore:
    """Accepted batches on disk and in memory, with event counts per campaign and day.

    Days are computed in the partner's reporting time zone, as a real partner
    would report them. Thread-safe: the HTTP server and the puller share one.
    """

    def __init__(self, *, data_dir: Path | str, time_zone: str = "UTC") -> None:
        self.data_dir = Path(data_dir)
        self.batch_dir = self.data_dir / "batches"
        self.tz = ZoneInfo(time_zone)
        self._lock = threading.Lock()
        self._batches: dict[str, StoredBatch] = {}
        self._counts: Counter[CountKey] = Counter()
        self.uncounted_events = 0

    def load(self) -> int:
        """Rebuild the index and counts from batch files of an earlier run; returns how many."""
        self.batch_dir.mkdir(parents=True, exist_ok=True)
        loaded = 0
        for path in sorted(self.batch_dir.glob("*.ndjson")):
            if not batch_id_valid(path.stem):
                continue  # e.g. a temporary file left by a crash mid-write
            try:
                records = parse_ndjson(body_text(path.read_bytes()))
            except (OSError, BodyError):
                continue  # A damaged file is left for a human; it is not counted.
            with self._lock:
                # Already indexed (a restart of the same simulator): count once.
                if path.stem in self._batches:
                    continue
                self._index(path.stem, path, records, source="disk")
            loaded += 1
        return loaded

    def contains(self, batch_id: str) -> bool:
        with self._lock:
            return batch_id in self._batches

    def add(
        self, *, batch_id: str, body: bytes, records: list[dict[str, Any]], source: str
    ) -> bool:
        """Store a batch once; returns False (and stores nothing) if the id is already known."""
        if not batch_id_valid(batch_id):
            raise ValueError(f"unsafe batch id {batch_id!r}")
        with self._lock:
            if batch_id in self._batches:
                return False
            path = self.batch_dir / f"{batch_id}.ndjson"
            _write_atomically(path, body)
            self._index(batch_id, path, records, source=source)
            return True

    def _index(
        self, batch_id: str, path: Path, records: list[dict[str, Any]], *, source: str
    ) -> None:
        self._batches[batch_id] = StoredBatch(
            batch_id=batch_id,
            path=path,
            event_count=len(records),
            stored_at=datetime.now(tz=UTC),
            source=source,
        )
        for record in records:
            key = self._count_key(record)
            if key is None:
                self.uncounted_events += 1
            else:
                self._counts[key] += 1

    def _count_key(self, record: Mapping[str, Any]) -> CountKey | None:
        campaign_id = record.get("campaign_id")
        occurred_at = record.get("occurred_at")
        if not isinstance(campaign_id, str) or not isinstance(occurred_at, str):
            return None
        try:
            day = event_day(occurred_at, self.tz)
        except ValueError:
            return None
        event_type = record.get("event_type")
        return campaign_id, day, event_type if isinstance(event_type, str) else None

    def batches(self) -> list[StoredBatch]:
        with self._lock:
            return list(self._batches.values())

    def batch_ids(self) -> list[str]:
        with self._lock:
            return list(self._batches)

    def counts(self, *, event_types: Collection[str] | None = None) -> dict[tuple[str, date], int]:
        """Events per (campaign_id, day); with ``event_types``, only those types.

        Events without an event_type (a feed may not carry the field) count as
        any type: a partner that cannot tell them apart counts them all.
        """
        with self._lock:
            items = list(self._counts.items())
        return _sum_by_campaign_day(
            (campaign_id, day, n)
            for (campaign_id, day, event_type), n in items
            if event_types is None or event_type is None or event_type in event_types
        )

    def event_total(self) -> int:
        with self._lock:
            return sum(batch.event_count for batch in self._batches.values())


def _sum_by_campaign_day(rows: Iterable[tuple[str, date, int]]) -> dict[tuple[str, date], int]:
    totals: Counter[tuple[str, date]] = Counter()
    for campaign_id, day, n in rows:
        totals[(campaign_id, day)] += n
    return dict(totals)


def _write_atomically(path: Path, body: bytes) -> None:
    """Write to a temporary file in the same directory, then rename over the target.

    A reader (or a crash) never sees half a batch: the rename is atomic on POSIX.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".ndjson")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
