"""windows_dispatch: one batch per newly closed window of every live feed, exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from gateway.delivery import services
from gateway.delivery.models import Batch, FeedCursor
from gateway.delivery.services import windows_dispatch
from partners.models import Feed, Partner
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed, make_partner

pytestmark = pytest.mark.django_db

DELIVER_FROM = datetime(2026, 11, 24, 9, 0, 20, tzinfo=UTC)
# Three 60 s windows (09:00, 09:01, 09:02) have closed; 09:03 is still open.
NOW = datetime(2026, 11, 24, 9, 3, 10, tzinfo=UTC)


@pytest.fixture
def feed(partner: Partner) -> Feed:
    return make_feed(partner=partner, deliver_from=DELIVER_FROM, batch_window_seconds=60)


def windows_of(feed: Feed) -> list[tuple[int, datetime, datetime]]:
    return list(
        Batch.objects.filter(feed=feed)
        .order_by("sequence")
        .values_list("sequence", "window_start", "window_end")
    )


def at(minute: int, second: int = 0) -> datetime:
    return datetime(2026, 11, 24, 9, minute, second, tzinfo=UTC)


def test_it_creates_one_pending_batch_per_closed_window_numbered_from_one(
    feed: Feed, queued: QueuedTasks
):
    report = windows_dispatch(now=NOW)

    assert report.created == 3
    assert windows_of(feed) == [(1, at(0), at(1)), (2, at(1), at(2)), (3, at(2), at(3))]
    assert set(Batch.objects.values_list("status", flat=True)) == {Batch.Status.PENDING}


def test_windows_are_created_even_when_no_exposure_arrived(feed: Feed, queued: QueuedTasks):
    # There are no exposures at all: the windows still exist and build as empty,
    # so sequence numbers have no gaps and a partner can see nothing was missed.
    windows_dispatch(now=NOW)

    assert Batch.objects.filter(feed=feed).count() == 3


def test_running_it_again_creates_nothing_new(feed: Feed, queued: QueuedTasks):
    windows_dispatch(now=NOW)

    again = windows_dispatch(now=NOW)

    assert again.created == 0
    assert Batch.objects.filter(feed=feed).count() == 3


def test_later_runs_continue_the_sequence_from_the_last_batch(feed: Feed, queued: QueuedTasks):
    windows_dispatch(now=NOW)

    later = windows_dispatch(now=NOW + timedelta(minutes=2))

    assert later.created == 2
    assert windows_of(feed)[-2:] == [(4, at(3), at(4)), (5, at(4), at(5))]


def test_the_grace_period_holds_back_a_window_that_just_ended(
    partner: Partner, queued: QueuedTasks
):
    feed = make_feed(
        partner=partner, deliver_from=DELIVER_FROM, batch_window_seconds=60, grace_seconds=15
    )

    windows_dispatch(now=NOW)

    # 09:02-09:03 ended 10 s ago, less than its 15 s grace.
    assert [row[0] for row in windows_of(feed)] == [1, 2]


def test_it_queues_one_build_per_new_batch_after_commit(
    feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        windows_dispatch(now=NOW)

    assert queued.calls == []
    for callback in callbacks:
        callback()
    ids = set(Batch.objects.values_list("pk", flat=True))
    assert {str(pk) for pk in ids} == set(queued.ids("delivery.build_batch"))


def test_disabled_feeds_are_skipped(partner: Partner, queued: QueuedTasks):
    make_feed(partner=partner, deliver_from=DELIVER_FROM, enabled=False)

    assert windows_dispatch(now=NOW).created == 0


@pytest.mark.parametrize("status", [Partner.Status.PAUSED, Partner.Status.OFFBOARDED])
def test_feeds_of_partners_not_active_are_skipped(queued: QueuedTasks, status: Partner.Status):
    partner = make_partner(status=status)
    make_feed(partner=partner, deliver_from=DELIVER_FROM)

    assert windows_dispatch(now=NOW).created == 0
    assert not Batch.objects.exists()


def test_pull_feeds_get_batches_too(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, mode=Feed.Mode.PULL, deliver_from=DELIVER_FROM)

    windows_dispatch(now=NOW)

    assert len(windows_of(feed)) == 3


def test_each_feed_has_its_own_windows_and_sequence(partner: Partner, queued: QueuedTasks):
    minutely = make_feed(partner=partner, deliver_from=DELIVER_FROM, batch_window_seconds=60)
    hourly = make_feed(
        partner=make_partner(),
        deliver_from=datetime(2026, 11, 24, 6, 30, tzinfo=UTC),
        batch_window_seconds=3600,
    )

    windows_dispatch(now=NOW)

    assert [row[0] for row in windows_of(minutely)] == [1, 2, 3]
    assert windows_of(hourly) == [
        (1, datetime(2026, 11, 24, 6, tzinfo=UTC), datetime(2026, 11, 24, 7, tzinfo=UTC)),
        (2, datetime(2026, 11, 24, 7, tzinfo=UTC), datetime(2026, 11, 24, 8, tzinfo=UTC)),
        (3, datetime(2026, 11, 24, 8, tzinfo=UTC), datetime(2026, 11, 24, 9, tzinfo=UTC)),
    ]


def test_a_feed_far_behind_catches_up_a_capped_number_of_windows_per_run(
    feed: Feed, queued: QueuedTasks
):
    first = windows_dispatch(now=NOW + timedelta(hours=1), max_windows=10)
    second = windows_dispatch(now=NOW + timedelta(hours=1), max_windows=10)

    assert (first.created, second.created) == (10, 10)
    assert [row[0] for row in windows_of(feed)] == list(range(1, 21))


def test_a_dispatcher_that_lost_the_race_skips_the_feed_without_crashing(
    feed: Feed, partner: Partner, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    other = make_feed(partner=partner, deliver_from=DELIVER_FROM)
    windows_dispatch(now=NOW)

    # A stale read: this dispatcher believes the feed's cursor is fresh, as
    # one that skipped the row lock would; the claim constraint still holds.
    def stale(*, feed: Feed) -> FeedCursor:
        return FeedCursor(feed=feed, pk=feed.cursor.pk)

    monkeypatch.setattr(services, "feed_cursor_locked", stale)

    report = windows_dispatch(now=NOW + timedelta(minutes=1))

    assert report.created == 0
    assert [row[0] for row in windows_of(feed)] == [1, 2, 3]
    assert [row[0] for row in windows_of(other)] == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_create_each_window_once(
    monkeypatch: pytest.MonkeyPatch, queued: QueuedTasks
):
    feed = make_feed(partner=make_partner(), deliver_from=DELIVER_FROM)
    # Both dispatchers read "no batches yet" before either inserts: a barrier
    # between the read and the insert forces the race every time.
    barrier = threading.Barrier(2, timeout=10)
    original = services._feed_dispatch

    def synchronised(**kwargs: Any) -> int:
        barrier.wait()
        return original(**kwargs)

    monkeypatch.setattr(services, "_feed_dispatch", synchronised)
    reports: list[services.DispatchReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(windows_dispatch(now=NOW))
        except BaseException as exc:  # the test fails on any error in a thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(report.created for report in reports) == [0, 3]
    assert [row[0] for row in windows_of(feed)] == [1, 2, 3]
    # Only the winner's batches were queued for building.
    assert len(queued.ids("delivery.build_batch")) == 3


def test_each_dispatch_run_also_sweeps_batches_whose_message_was_lost(
    feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    windows_dispatch(now=NOW)
    queued.calls.clear()

    with django_capture_on_commit_callbacks(execute=True):
        report = windows_dispatch(now=NOW + timedelta(minutes=10))

    # Ten more windows, plus the three first batches still pending after 10 minutes.
    assert report.created == 10
    assert report.requeued == 3
    assert len(queued.ids("delivery.build_batch")) == 13


def test_a_feed_starting_in_the_future_gets_no_batch_yet(partner: Partner, queued: QueuedTasks):
    make_feed(partner=partner, deliver_from=NOW + timedelta(hours=1))

    assert windows_dispatch(now=NOW).created == 0
