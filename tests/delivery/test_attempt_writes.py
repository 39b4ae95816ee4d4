"""A send's two writes: each all or nothing, one statement on PostgreSQL, a transaction elsewhere.

Every test runs twice: as PostgreSQL runs it (one data-modifying WITH) and as
the portable path does (two ORM statements in a transaction), the latter by
telling the write that the database is not PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gateway.delivery.attempt_writes import claim_write, outcome_write
from gateway.delivery.models import Batch, DeliveryAttempt
from partners.models import Feed
from tests.delivery.builders import make_batch

pytestmark = pytest.mark.django_db

Outcome = DeliveryAttempt.Outcome


@pytest.fixture(params=["one_statement", "portable"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "portable":
        monkeypatch.setattr(connection, "vendor", "portable")
    yield request.param


def _ready(feed: Feed, **fields: object) -> Batch:
    return make_batch(feed=feed, status=Batch.Status.READY, **fields)


def _claim(batch: Batch, *, number: int = 1) -> tuple[bool, DeliveryAttempt]:
    now = timezone.now()
    attempt = DeliveryAttempt(
        batch=batch, number=number, started_at=now, webhook_timestamp=1_700_000_000, task_id="t-1"
    )
    claimed = claim_write(
        due=Batch.objects.filter(pk=batch.pk, status=Batch.Status.READY),
        claim={"status": Batch.Status.SENDING, "claimed_at": now, "attempt_count": number},
        attempt=attempt,
    )
    return claimed, attempt


def test_a_claim_moves_the_batch_and_writes_the_attempt_row(path: str, push_feed: Feed) -> None:
    batch = _ready(push_feed)

    claimed, attempt = _claim(batch)

    assert claimed
    assert attempt.pk is not None and not attempt._state.adding
    stored = DeliveryAttempt.objects.get(pk=attempt.pk)
    assert (stored.batch_id, stored.number, stored.outcome) == (batch.pk, 1, Outcome.IN_PROGRESS)
    assert (stored.started_at, stored.webhook_timestamp) == (attempt.started_at, 1_700_000_000)
    assert (stored.task_id, stored.finished_at, stored.http_status) == ("t-1", None, None)
    batch.refresh_from_db()
    assert (batch.status, batch.attempt_count) == (Batch.Status.SENDING, 1)
    assert batch.claimed_at == attempt.started_at


def test_a_batch_that_is_not_due_is_not_claimed_and_gets_no_attempt(
    path: str, push_feed: Feed
) -> None:
    batch = _ready(push_feed)
    assert _claim(batch)[0]

    claimed, attempt = _claim(batch, number=2)  # now "sending": the filter no longer matches

    assert not claimed
    assert attempt.pk is None
    assert DeliveryAttempt.objects.filter(batch=batch).count() == 1
    batch.refresh_from_db()
    assert batch.attempt_count == 1


def test_a_claim_whose_attempt_row_cannot_be_written_leaves_the_batch_as_it_was(
    path: str, push_feed: Feed
) -> None:
    batch = _ready(push_feed)
    DeliveryAttempt.objects.create(
        batch=batch, number=1, started_at=timezone.now(), webhook_timestamp=1
    )

    # Attempt 1 exists already: the insert breaks the unique number, and the claim goes with it.
    with pytest.raises(IntegrityError), transaction.atomic():
        _claim(batch, number=1)

    batch.refresh_from_db()
    assert (batch.status, batch.attempt_count, batch.claimed_at) == (Batch.Status.READY, 0, None)
    assert DeliveryAttempt.objects.filter(batch=batch).count() == 1


def _finished(batch: Batch, attempt: DeliveryAttempt, *, status: str) -> None:
    now = timezone.now()
    attempt.outcome = Outcome.SUCCEEDED
    attempt.http_status = 200
    attempt.finished_at = now
    attempt.duration_ms = 12
    batch.status = status
    batch.delivered_at = now
    batch.claimed_at = None
    outcome_write(
        attempt=attempt,
        attempt_fields=["outcome", "http_status", "finished_at", "duration_ms"],
        batch=batch,
        batch_fields=["status", "delivered_at", "claimed_at"],
    )


def test_an_outcome_writes_the_attempt_and_the_batch(path: str, push_feed: Feed) -> None:
    batch = _ready(push_feed, last_error="attempt 1: HTTP 503")
    _, attempt = _claim(batch)

    _finished(batch, attempt, status=Batch.Status.DELIVERED)

    stored = DeliveryAttempt.objects.get(pk=attempt.pk)
    assert (stored.outcome, stored.http_status, stored.duration_ms) == (Outcome.SUCCEEDED, 200, 12)
    assert stored.finished_at == attempt.finished_at
    batch.refresh_from_db()
    assert (batch.status, batch.claimed_at) == (Batch.Status.DELIVERED, None)
    assert batch.delivered_at == attempt.finished_at
    # Only the named fields are written.
    assert batch.last_error == "attempt 1: HTTP 503"


def test_an_outcome_the_batch_refuses_leaves_the_attempt_unwritten(
    path: str, push_feed: Feed
) -> None:
    batch = _ready(push_feed)
    _, attempt = _claim(batch)

    # Longer than the status column allows: the batch's half fails, so the attempt's does too.
    with pytest.raises(DataError), transaction.atomic():
        _finished(batch, attempt, status="delivered-but-too-long")

    stored = DeliveryAttempt.objects.get(pk=attempt.pk)
    assert (stored.outcome, stored.finished_at) == (Outcome.IN_PROGRESS, None)


def test_on_postgresql_each_write_is_one_statement(
    push_feed: Feed,
) -> None:
    batch = _ready(push_feed, next_attempt_at=timezone.now() - timedelta(seconds=1))

    with CaptureQueriesContext(connection) as claim:
        _, attempt = _claim(batch)
    with CaptureQueriesContext(connection) as outcome:
        _finished(batch, attempt, status=Batch.Status.DELIVERED)

    assert [q["sql"].split()[0] for q in claim.captured_queries] == ["WITH"]
    assert [q["sql"].split()[0] for q in outcome.captured_queries] == ["WITH"]
