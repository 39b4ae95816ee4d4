"""Building a batch: its window's exposures, through the privacy filter, into a gzip NDJSON body.

An event feed gets one minimised record per eligible exposure. An aggregate
feed gets one row per cell of its dimensions, cells under the feed's
distinct-user threshold left out (``gateway.privacy.aggregate``).

An event feed with ``max_batch_events`` or ``max_batch_bytes`` gets its
records in parts within those limits (``gateway.delivery.parts`` stores and
signs each body); the
batches of the parts after the first are created with the build's result,
in the same transaction (``Batch``'s docstring).
"""

from __future__ import annotations

import gc
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

import orjson
from django.db import connection, transaction
from django.db.models import CharField, TextField, Value
from django.db.models.functions import Cast, Concat, TruncDate
from django.utils import timezone

from gateway.delivery.body import CHUNK_BYTES, NDJSON_OPTIONS, NO_LIMIT, Body, BodyWriter
from gateway.delivery.claims import claimed_exposures
from gateway.delivery.kept_policies import kept_policy
from gateway.delivery.models import Batch
from gateway.delivery.parts import BuildParts, BuiltPart
from gateway.delivery.prefetch import prefetched_chunks
from gateway.delivery.queueing import on_commit_send
from gateway.delivery.sequences import batches_create_numbered, feed_cursor_locked
from gateway.privacy.aggregate import Aggregation, aggregate_dimensions_problems
from gateway.privacy.filter import filter_with_result
from gateway.privacy.policy import PartnerPolicy
from gateway.privacy.rows import UNSPECIFIED_REASON, FilterRows, row_filter
from partners.models import Feed, FeedShape

if TYPE_CHECKING:
    from gateway.filedrop.parquet import ParquetBodyWriter

BatchId = uuid.UUID | str
# (payload, tag) of one exposure, the tag being "<campaign_id>|<YYYY-MM-DD>|<event_type>"
# with the day of occurred_at in the partner's reporting time zone: what the
# batch counts delivered exposures by (BuildTally.delivered_by_campaign_day_event),
# taken from the columns, not the record: the allowlist may remove those fields.
ExposureRow = tuple[dict[str, Any], str]
# The same as read: (payload JSON text, tag).
StoredRow = tuple[str, str]

# The collector's first threshold during a build (Python's default is 700).
BUILD_GC_THRESHOLD = 100_000
# Exposures fetched per round trip while streaming a window.
EXPOSURE_CHUNK_SIZE = 2000


class AggregateConfigurationError(ValueError):
    """An aggregate feed's dimensions are not allowed; the batch is not built."""


@dataclass
class BuildTally:
    """Counts gathered while streaming a window through the privacy filter."""

    candidates: int = 0
    # Rows in the body: event records, or aggregate rows.
    delivered: int = 0
    dropped_by_reason: Counter[str] = field(default_factory=Counter)
    transformed_by_reason: Counter[str] = field(default_factory=Counter)
    # "<campaign_id>|<YYYY-MM-DD>|<event_type>" -> delivered exposures.
    delivered_by_campaign_day_event: Counter[str] = field(default_factory=Counter)
    # Aggregate feeds: cells withheld under the distinct-user threshold.
    suppressed_cells: int = 0
    gvl_version: int | None = None


def batch_build(*, batch_id: BatchId) -> Batch | None:
    """Filter the window's exposures for the feed's partner into a gzip NDJSON body.

    Returns the built batch, or None when another worker has it or it is no
    longer pending. A window with nothing to deliver ends as ``empty``; a push
    batch that is ``ready`` is queued for sending.
    """
    claimed_at = timezone.now()
    claimed = Batch.objects.filter(pk=batch_id, status=Batch.Status.PENDING).update(
        status=Batch.Status.BUILDING, claimed_at=claimed_at
    )
    if not claimed:
        return None
    batch = Batch.objects.select_related("feed__partner").get(pk=batch_id)
    try:
        with _few_collections():
            parts = _window_build(batch=batch)
    except Exception as exc:
        # Hand the batch back: the sweeper queues it again later, and last_error
        # shows in the admin why it is still pending. Bodies stored meanwhile
        # are overwritten by the next build: a part's id, hence its body's
        # name, is derived from the claim's batch (part_id).
        Batch.objects.filter(
            pk=batch_id, status=Batch.Status.BUILDING, claimed_at=claimed_at
        ).update(status=Batch.Status.PENDING, claimed_at=None, last_error=f"build failed: {exc!r}")
        raise
    return _build_finish(batch=batch, claimed_at=claimed_at, parts=parts)


def _window_build(*, batch: Batch) -> list[BuiltPart]:
    """Stream the window's in-scope exposures through the filter into stored bodies."""
    feed = batch.feed
    parts = BuildParts(batch)
    try:
        # What the filter learns (decisions per signal key, pseudonyms, ...) is
        # kept for this process's next build of an unchanged configuration.
        with (
            kept_policy(partner=feed.partner, feed=feed) as policy,
            _window_chunks(batch=batch) as chunks,
        ):
            if feed.shape == FeedShape.AGGREGATE:
                tally = BuildTally(gvl_version=policy.gvl_version)
                body = _aggregate_body(
                    feed=feed, policy=policy, rows=_parsed(chunks), tally=tally, writer=parts.writer
                )
            else:
                tally, body = _events_bodies(policy=policy, chunks=chunks, parts=parts)
        # The last (or only) part is stored once the cursor's transaction has ended.
        parts.store(tally, body)
    finally:
        parts.abandon()
    return parts.built


@contextmanager
def _few_collections() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a build's way.

    A build allocates millions of short-lived, acyclic objects (parsed
    payloads, records), which reference counting frees; yet each allocation
    burst triggers collections that walk every long-lived object of the
    process (Django, the filter's caches). Freezing those and raising the
    first threshold made a one-million-event build about 20 % faster
    (docs/benchmarks.md). Cycles made meanwhile are collected afterwards.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(BUILD_GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@contextmanager
def _window_chunks(*, batch: Batch) -> Iterator[Iterator[list[StoredRow]]]:
    """The batch's claimed exposures as stored, in chunks; the cursor closes when the block ends."""
    zone = ZoneInfo(batch.feed.partner.reporting_time_zone)
    # The tag is put together by the database: parsing a timestamp per row and
    # converting it in Python cost more than the rest of reading it.
    local_day = Cast(TruncDate("occurred_at", tzinfo=zone), CharField())
    # The payload as JSON text (as stored: the column is json, so no conversion),
    # parsed by orjson below or read by the byte path: through the ORM, each
    # payload would go through a Python-level loader and json.loads.
    rows = (
        claimed_exposures(batch)
        .annotate(
            payload_text=Cast("payload", TextField()),
            tag=Concat("campaign_id", Value("|"), local_day, Value("|"), "event_type"),
        )
        .values_list("payload_text", "tag")
    )
    if connection.vendor != "postgresql":
        yield _chunked(rows.iterator(chunk_size=EXPOSURE_CHUNK_SIZE), EXPOSURE_CHUNK_SIZE)
        return
    # The same SQL as the queryset's, so what is claimed cannot differ, from a
    # server-side cursor whose next chunk is fetched while this one is filtered.
    sql, params = rows.query.sql_with_params()
    with transaction.atomic():
        with connection.cursor() as settings_cursor:
            # No JIT: compiling the campaign scope (a clause per assignment)
            # took most of a second before the first row, for a plain scan.
            settings_cursor.execute("SET LOCAL jit = off")
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            with prefetched_chunks(lambda: cursor.fetchmany(EXPOSURE_CHUNK_SIZE)) as chunks:
                yield cast(Iterator[list[StoredRow]], chunks)  # fetchmany gives lists


def _chunked(rows: Iterable[StoredRow], size: int) -> Iterator[list[StoredRow]]:
    chunk: list[StoredRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parsed(chunks: Iterable[Iterable[StoredRow]]) -> Iterator[ExposureRow]:
    loads = orjson.loads
    for chunk in chunks:
        for payload, tag in chunk:
            yield loads(payload), tag


def _events_bodies(
    *, policy: PartnerPolicy, chunks: Iterator[list[StoredRow]], parts: BuildParts
) -> tuple[BuildTally, Body]:
    """Filter the stored rows into bodies within the feed's max_batch_events and max_batch_bytes.

    Each full body goes to ``parts.store`` with the tally of the exposures
    it accounts for; the last (for most feeds the only) part is returned. A
    part ends just before the event that would overfill it, so every
    candidate, dropped or delivered, is counted in exactly one part, and
    there is always a last part (empty when nothing was eligible). A part
    takes its first record whatever its size.
    """
    writer = parts.writer()
    if not isinstance(writer, BodyWriter):  # Parquet: records, not lines
        return _record_bodies(policy=policy, rows=_parsed(chunks), parts=parts, writer=writer)
    filter_rows = row_filter(policy, loads=orjson.loads, dumps=orjson.dumps, option=NDJSON_OPTIONS)
    counts = _PartCounts(policy)
    for rows in chunks:
        start = 0
        while start < len(rows):
            start, full = _lines_add(filter_rows, rows, start, writer=writer, counts=counts)
            if full:  # the row at start begins the next part
                parts.store(counts.tally(), writer.finish())
                writer = cast(BodyWriter, parts.writer())
                counts = _PartCounts(policy)
    return counts.tally(), writer.finish()


def _lines_add(
    filter_rows: FilterRows,
    rows: list[StoredRow],
    start: int,
    *,
    writer: BodyWriter,
    counts: _PartCounts,
) -> tuple[int, bool]:
    """Filter ``rows`` from ``start`` into ``writer``: where to go on, and whether the part is full.

    At most about a compression chunk of lines per call: handing the writer a
    whole chunk of rows' lines at once cost the process 28 MB more at its
    peak (docs/benchmarks.md).
    """
    lines: list[bytes] = []
    budget = min(writer.bytes_left, CHUNK_BYTES)
    start, size = counts.filtered(filter_rows, rows, start, lines, writer.records_left, budget)
    if not lines and start < len(rows):
        # The row at start did not fit that budget. Alone, does it fit the part?
        # A part takes its first line whatever its size.
        room = NO_LIMIT if writer.empty else writer.bytes_left
        records = 1 if writer.empty else min(1, writer.records_left)
        start, size = counts.filtered(filter_rows, rows, start, lines, records, room)
        if not lines:
            return start, True
    writer.extend(lines, size)
    return start, False


class _PartCounts:
    """One part's counts as the row filter keeps them, folded into a BuildTally at the end.

    Plain dicts in the loop: the audit keys of a result come as one tuple,
    counted as such and expanded once (a Counter.update per event cost more
    than the rest of it).
    """

    def __init__(self, policy: PartnerPolicy) -> None:
        self.gvl_version = policy.gvl_version
        self.candidates = 0
        self.dropped: dict[str, int] = {}
        self.audits: dict[tuple[str, ...], int] = {}
        self.tags: dict[str, int] = {}

    def filtered(
        self,
        filter_rows: FilterRows,
        rows: list[StoredRow],
        start: int,
        lines: list[bytes],
        records_left: int,
        bytes_left: int,
    ) -> tuple[int, int]:
        """``filter_rows`` counting into this part: where to go on, and the bytes of ``lines``."""
        next_start, candidates, size = filter_rows(
            rows, start, lines, self.dropped, self.audits, self.tags, records_left, bytes_left
        )
        self.candidates += candidates
        return next_start, size

    def tally(self) -> BuildTally:
        tally = BuildTally(gvl_version=self.gvl_version)
        tally.dropped_by_reason.update(self.dropped)
        _tally_fold(tally, candidates=self.candidates, audits=self.audits, tags=self.tags)
        return tally


def _record_bodies(
    *,
    policy: PartnerPolicy,
    rows: Iterator[ExposureRow],
    parts: BuildParts,
    writer: BodyWriter | ParquetBodyWriter,
) -> tuple[BuildTally, Body]:
    """``_events_bodies`` for a writer of records (Parquet): the same parts and counts."""
    write = writer.write
    tally = BuildTally(gvl_version=policy.gvl_version)
    audits: dict[tuple[str, ...], int] = {}  # as in _PartCounts
    tags: dict[str, int] = {}
    candidates = 0
    for payload, tag in rows:
        candidates += 1
        result, record = filter_with_result(payload, policy)
        if not result.decision.eligible or record is None:
            tally.dropped_by_reason[result.decision.reason or UNSPECIFIED_REASON] += 1
            continue
        if not write(record):
            # The part is full: this event starts the next; the candidates before it are this one's.
            _tally_fold(tally, candidates=candidates - 1, audits=audits, tags=tags)
            parts.store(tally, writer.finish())
            writer = parts.writer()
            write = writer.write
            write(record)  # a new part takes its first record whatever its size
            tally = BuildTally(gvl_version=policy.gvl_version)
            audits, tags = {}, {}
            candidates = 1
        # "<activity>_denied:<reason>" for each activity whose fields were removed.
        audit = result.audit
        audits[audit] = audits.get(audit, 0) + 1
        tags[tag] = tags.get(tag, 0) + 1
    _tally_fold(tally, candidates=candidates, audits=audits, tags=tags)
    return tally, writer.finish()


def _tally_fold(
    tally: BuildTally, *, candidates: int, audits: dict[tuple[str, ...], int], tags: dict[str, int]
) -> None:
    """Add one part's loop counts to its tally."""
    tally.candidates += candidates
    tally.delivered += sum(tags.values())
    tally.delivered_by_campaign_day_event.update(tags)
    _audits_fold(tally, audits)


def _audits_fold(tally: BuildTally, audits: dict[tuple[str, ...], int]) -> None:
    """Add events counted per audit tuple to the tally's count per audit key."""
    for audit, count in audits.items():
        for key in audit:
            tally.transformed_by_reason[key] += count


def _aggregate_body(
    *,
    feed: Feed,
    policy: PartnerPolicy,
    rows: Iterator[ExposureRow],
    tally: BuildTally,
    writer: Callable[[], BodyWriter | ParquetBodyWriter],
) -> Body:
    dimensions = feed.aggregate_dimensions
    # Checked again at every build, not only when the feed was saved: a row
    # edited outside the admin must not group by an identifier.
    problems = aggregate_dimensions_problems(dimensions, feed.field_allowlist)
    if problems:
        raise AggregateConfigurationError(f"aggregate dimensions: {' '.join(problems)}")
    # Consent decisions are the feed's; the record holds only the dimensions,
    # minimised exactly as an event feed would send them.
    cell_policy = replace(policy, field_allowlist=frozenset(dimensions))
    aggregation = Aggregation(
        dimensions=dimensions, min_users=feed.aggregate_min_users, honour_lmt=policy.honour_lmt
    )
    audits: dict[tuple[str, ...], int] = {}  # as in _events_body
    for payload, tag in rows:
        tally.candidates += 1
        result, record = filter_with_result(payload, cell_policy)
        if not result.decision.eligible or record is None:
            tally.dropped_by_reason[result.decision.reason or UNSPECIFIED_REASON] += 1
            continue
        audit = result.audit
        audits[audit] = audits.get(audit, 0) + 1
        aggregation.add(
            record,
            event=payload,
            denied_activities=result.denied_activities,
            tag=tag,
        )
    _audits_fold(tally, audits)
    outcome = aggregation.finish()
    body_writer = writer()
    for row in outcome.rows:
        body_writer.write(row)
    # delivered_count is what the partner receives: lines of the body, i.e.
    # rows. Reconciliation, though, compares the partner's impression counts
    # (the sum of "events" over the rows) with ours, so the campaign/day counts
    # stay in events: those inside the rows sent, not those of suppressed cells.
    tally.delivered = len(outcome.rows)
    tally.delivered_by_campaign_day_event.update(outcome.events_by_tag)
    tally.suppressed_cells = outcome.suppressed_cells
    return body_writer.finish()


def _build_finish(*, batch: Batch, claimed_at: datetime, parts: list[BuiltPart]) -> Batch | None:
    """Record the build on the claim's batch and create the batches of its later parts.

    One transaction, conditional on our claim: if the sweeper judged this
    worker dead and another build took over, that build's result stands, and
    none of these parts exist.
    """
    now = timezone.now()
    push = batch.feed.pushes
    first_fields = _built_fields(parts[0], part_count=len(parts), now=now, push=push)
    with transaction.atomic():
        saved = Batch.objects.filter(
            pk=batch.pk, status=Batch.Status.BUILDING, claimed_at=claimed_at
        ).update(**first_fields)
        if not saved:
            return None
        later = [
            _fields_set(part.batch, _built_fields(part, part_count=len(parts), now=now, push=push))
            for part in parts[1:]
        ]
        if later:
            # Numbered under the cursor lock, one at a time with the dispatcher.
            feed_cursor_locked(feed=batch.feed)
            batches_create_numbered(feed_id=batch.feed_id, batches=later)
        # Parts after the first are never empty: a part is cut only for an event to send.
        if push and first_fields["status"] == Batch.Status.READY:
            for ready in (batch, *later):
                on_commit_send(ready.pk)
    return _fields_set(batch, first_fields)


def _fields_set(batch: Batch, fields: dict[str, Any]) -> Batch:
    """``batch`` with ``fields`` set on the instance (what was saved, or is about to be)."""
    for name, value in fields.items():
        setattr(batch, name, value)
    return batch


def _built_fields(part: BuiltPart, *, part_count: int, now: datetime, push: bool) -> dict[str, Any]:
    """What a built part's batch row records: status, counts, body and first signature."""
    tally = part.tally
    status = Batch.Status.READY if tally.delivered else Batch.Status.EMPTY
    fields: dict[str, Any] = {
        "status": status,
        "built_at": now,
        "claimed_at": None,
        "last_error": "",
        "part_count": part_count,
        "candidate_count": tally.candidates,
        "delivered_count": tally.delivered,
        "dropped_by_reason": dict(sorted(tally.dropped_by_reason.items())),
        "transformed_by_reason": dict(sorted(tally.transformed_by_reason.items())),
        "delivered_by_campaign_day_event": dict(
            sorted(tally.delivered_by_campaign_day_event.items())
        ),
        "suppressed_cells": tally.suppressed_cells,
        "gvl_version": tally.gvl_version,
        "body_path": part.body_path,
        "body_sha256": part.body_sha256,
        "body_bytes": part.body_bytes,
        "first_signature": part.first_signature.as_json() if part.first_signature else None,
    }
    if push and status == Batch.Status.READY:
        fields["queued_at"] = now
    return fields
