"""Claims: every exposure lands in exactly one batch per feed, however late it commits.

These tests commit for real (transaction=True): the commit horizon is about
which transactions have ended, which a test wrapped in one transaction
cannot show.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from gateway.delivery.claims import claimed_exposures, commit_horizon
from gateway.delivery.models import Batch, FeedCursor
from gateway.delivery.services import windows_dispatch
from gateway.ingest.models import Exposure
from partners.models import Feed
from tests.delivery.builders import make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed, make_partner

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def minute(n: int, second: int = 0) -> datetime:
    return START + timedelta(minutes=n, seconds=second)


@pytest.fixture
def feed() -> Feed:
    partner = make_partner(campaigns=("cmp-1",))
    return make_feed(partner=partner, deliver_from=START, batch_window_seconds=60, grace_seconds=5)


def exposure_at(occurred_at: datetime, **overrides) -> Exposure:
    return make_exposure(received_at=occurred_at, occurred_at=occurred_at, **overrides)


def holders(feed: Feed) -> dict[str, list[Batch]]:
    """For each exposure event id, the live batches of ``feed`` that claim it."""
    found: dict[str, list[Batch]] = {}
    for batch in Batch.objects.filter(feed=feed).exclude(status=Batch.Status.SUPERSEDED):
        for event_id in claimed_exposures(batch).values_list("event_id", flat=True):
            found.setdefault(event_id, []).append(batch)
    return found


def test_every_exposure_row_gets_a_commit_sequence():
    exposure = exposure_at(minute(0))

    exposure.refresh_from_db()
    assert exposure.commit_seq is not None
    assert exposure.commit_seq < commit_horizon()


def test_an_exposure_committed_after_its_window_was_cut_goes_to_one_late_batch(
    feed: Feed, queued: QueuedTasks
):
    on_time = exposure_at(minute(0, 10))
    windows_dispatch(now=minute(1, 10))  # window 09:00 cut
    late = exposure_at(minute(0, 20))  # occurred in 09:00, committed after the cut

    windows_dispatch(now=minute(2, 10))  # window 09:01 cut, plus a late batch

    batches = list(Batch.objects.filter(feed=feed).order_by("sequence"))
    assert [(b.sequence, b.kind) for b in batches] == [
        (1, Batch.Kind.WINDOW),
        (2, Batch.Kind.LATE),
        (3, Batch.Kind.WINDOW),
    ]
    claimed = holders(feed)
    assert [b.kind for b in claimed[on_time.event_id]] == [Batch.Kind.WINDOW]
    assert [b.kind for b in claimed[late.event_id]] == [Batch.Kind.LATE]
    assert batches[1].window_end == minute(1)


def test_no_late_batch_is_cut_when_nothing_arrived_late(feed: Feed, queued: QueuedTasks):
    windows_dispatch(now=minute(1, 10))
    exposure_at(minute(1, 30))  # on time for 09:01

    windows_dispatch(now=minute(2, 10))

    kinds = list(
        Batch.objects.filter(feed=feed).order_by("sequence").values_list("kind", flat=True)
    )
    assert kinds == [Batch.Kind.WINDOW, Batch.Kind.WINDOW]


def test_late_exposures_of_other_partners_campaigns_cut_no_late_batch(
    feed: Feed, queued: QueuedTasks
):
    windows_dispatch(now=minute(1, 10))
    exposure_at(minute(0, 20), campaign_id="cmp-not-ours")

    windows_dispatch(now=minute(2, 10))

    assert not Batch.objects.filter(feed=feed, kind=Batch.Kind.LATE).exists()


def test_a_transaction_still_open_at_the_cut_is_claimed_by_a_later_round_not_lost(
    feed: Feed, queued: QueuedTasks
):
    inserted, release = threading.Event(), threading.Event()
    slow: dict[str, str] = {}

    def slow_ingest() -> None:
        try:
            with transaction.atomic():
                slow["event_id"] = exposure_at(minute(0, 30)).event_id
                inserted.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_ingest)
    thread.start()
    assert inserted.wait(timeout=30)
    fast = exposure_at(minute(0, 40))  # commits first, though it began later

    windows_dispatch(now=minute(1, 10))
    release.set()
    thread.join(timeout=30)
    windows_dispatch(now=minute(2, 10))

    claimed = holders(feed)
    # The open transaction held the horizon back: the faster exposure committed
    # above it waits too, and both land in the late batch, each exactly once.
    assert [b.kind for b in claimed[slow["event_id"]]] == [Batch.Kind.LATE]
    assert len(claimed[fast.event_id]) == 1


def test_random_arrivals_over_many_rounds_land_exactly_once(feed: Feed, queued: QueuedTasks):
    rng = random.Random(20261125)
    expected: set[str] = set()
    for round_number in range(1, 9):
        # Exposures of the open window and of any earlier one, in random order.
        for _ in range(rng.randint(0, 6)):
            occurred = minute(rng.randint(0, round_number - 1), rng.randint(0, 59))
            expected.add(exposure_at(occurred).event_id)
        windows_dispatch(now=minute(round_number, 10))
    windows_dispatch(now=minute(10, 10))  # a last round claims what arrived last

    claimed = holders(feed)
    assert set(claimed) == expected
    assert Counter(len(batches) for batches in claimed.values()) == {1: len(expected)}


def test_the_cursor_records_the_horizon_and_frontier_of_the_last_round(
    feed: Feed, queued: QueuedTasks
):
    exposure_at(minute(0, 10))
    before = commit_horizon()

    windows_dispatch(now=minute(3, 10))

    cursor = FeedCursor.objects.get(feed=feed)
    assert cursor.frontier == minute(3)
    assert cursor.horizon >= before
    window = Batch.objects.filter(feed=feed, kind=Batch.Kind.WINDOW).first()
    assert window is not None and window.claim_to == cursor.horizon
