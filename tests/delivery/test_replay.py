"""Replay, re-build and dead batches (gateway.delivery.replay): selection and per-batch rules."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import responses
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.replay import (
    SelectBy,
    SkipReason,
    batch_ids,
    batch_replay,
    batches_rebuild,
    batches_replay,
    batches_retry_dead,
    dead_batches,
    feed_batches,
)
from gateway.delivery.services import batch_send
from partners.models import Feed, Partner
from tests.delivery.builders import WINDOW_START, make_batch
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/ingest"
RECORDS = [{"event_id": "evt-1"}]
Outcome = DeliveryAttempt.Outcome
Status = Batch.Status


@pytest.fixture(autouse=True)
def _breaker_out_of_the_way(settings, clean_shared_store: None):
    # Replays send several times to one endpoint: its breaker must not open.
    settings.DELIVERY_CIRCUIT_MIN_REQUESTS = 1000


def fresh(batch: Batch) -> Batch:
    return Batch.objects.get(pk=batch.pk)


def attempt(batch: Batch, number: int, outcome: str = Outcome.SUCCEEDED) -> DeliveryAttempt:
    return DeliveryAttempt.objects.create(
        batch=batch,
        number=number,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        outcome=outcome,
        webhook_timestamp=1,
    )


def window(n: int) -> dict:
    """Window n of a 60-second feed, as make_batch arguments."""
    return {"sequence": n + 1, "window_start": WINDOW_START + timedelta(minutes=n)}


# --- Replay ---------------------------------------------------------------------------


@responses.activate
def test_a_delivered_batch_is_replayed_under_the_same_id_as_a_new_attempt(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    responses.add(responses.POST, URL, status=200)
    batch = make_batch(feed=push_feed, status=Status.DELIVERED, records=RECORDS, attempt_count=1)
    attempt(batch, 1)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = batch_replay(batch_id=batch.pk)
    assert outcome.done
    assert queued.ids("delivery.send_batch") == [str(batch.pk)]
    batch_send(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Status.DELIVERED
    assert list(batch.attempts.values_list("number", "outcome")) == [
        (1, Outcome.SUCCEEDED),
        (2, Outcome.SUCCEEDED),
    ]
    assert responses.calls[0].request.headers["webhook-id"] == str(batch.pk)


@pytest.mark.parametrize("status", [Status.FAILED, Status.RETRY_SCHEDULED, Status.DELIVERED])
def test_a_replay_starts_a_fresh_attempt_budget(
    push_feed: Feed, queued: QueuedTasks, status: Status
):
    later = timezone.now() + timedelta(hours=1)
    batch = make_batch(
        feed=push_feed, status=status, records=RECORDS, attempt_count=8, next_attempt_at=later
    )

    assert batch_replay(batch_id=batch.pk).done

    batch = fresh(batch)
    assert batch.status == Status.READY
    assert (batch.attempt_count, batch.attempt_round_start) == (8, 8)
    assert batch.next_attempt_at is None


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (Status.PENDING, SkipReason.NOT_BUILT),
        (Status.BUILDING, SkipReason.IN_FLIGHT),
        (Status.SENDING, SkipReason.IN_FLIGHT),
        (Status.READY, SkipReason.QUEUED),
        (Status.EMPTY, SkipReason.EMPTY),
        (Status.SUPERSEDED, SkipReason.SUPERSEDED),
    ],
)
def test_a_batch_in_flight_or_at_no_rest_is_not_replayed(
    push_feed: Feed,
    queued: QueuedTasks,
    django_capture_on_commit_callbacks,
    status: Status,
    reason: SkipReason,
):
    batch = make_batch(feed=push_feed, status=status, records=RECORDS)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = batch_replay(batch_id=batch.pk)

    assert outcome.skipped == reason
    assert fresh(batch).status == status
    assert queued.ids("delivery.send_batch") == []


def test_a_pull_batch_is_never_replayed(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, mode=Feed.Mode.PULL)
    batch = make_batch(feed=feed, status=Status.READY, records=RECORDS)

    assert batch_replay(batch_id=batch.pk).skipped == SkipReason.PULL_FEED


def test_an_unknown_batch_is_reported_not_found(db: None):
    assert batch_replay(batch_id=uuid.uuid4()).skipped == SkipReason.NOT_FOUND


def test_a_dry_run_reports_what_would_happen_and_changes_nothing(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    failed = make_batch(feed=push_feed, status=Status.FAILED, records=RECORDS, **window(0))
    sending = make_batch(feed=push_feed, status=Status.SENDING, records=RECORDS, **window(1))

    with django_capture_on_commit_callbacks(execute=True):
        report = batches_replay(ids=[failed.pk, sending.pk], dry_run=True)

    assert report.dry_run
    assert report.done == [failed.pk]
    assert report.skipped == {SkipReason.IN_FLIGHT: [sending.pk]}
    assert fresh(failed).status == Status.FAILED
    assert queued.calls == []


def test_a_bulk_replay_reports_progress_and_reasons(push_feed: Feed, queued: QueuedTasks):
    delivered = make_batch(feed=push_feed, status=Status.DELIVERED, records=RECORDS, **window(0))
    pending = make_batch(feed=push_feed, status=Status.PENDING, **window(1))
    seen: list[tuple[int, int]] = []

    report = batches_replay(
        ids=[delivered.pk, pending.pk], progress=lambda done, total: seen.append((done, total))
    )

    assert seen == [(1, 2), (2, 2)]
    assert report.done == [delivered.pk]
    assert report.skipped == {SkipReason.NOT_BUILT: [pending.pk]}
    assert (report.total, report.skipped_count) == (2, 1)


# --- Selection ------------------------------------------------------------------------


def test_a_time_range_selects_the_feeds_batches_by_window_start(push_feed: Feed, partner: Partner):
    before = make_batch(feed=push_feed, **window(0))
    first = make_batch(feed=push_feed, **window(1))
    second = make_batch(feed=push_feed, status=Status.DELIVERED, **window(2))
    at_end = make_batch(feed=push_feed, **window(3))
    other_feed = make_feed(partner=partner)
    make_batch(feed=other_feed, **window(1))

    selected = feed_batches(
        feed=push_feed,
        since=WINDOW_START + timedelta(minutes=1),
        until=WINDOW_START + timedelta(minutes=3),
    )

    assert list(selected) == [first, second]
    assert before not in selected and at_end not in selected


def test_a_time_range_leaves_out_superseded_and_test_batches(push_feed: Feed):
    make_batch(feed=push_feed, status=Status.SUPERSEDED, **window(0))
    replacement = make_batch(feed=push_feed, sequence=2, window_start=WINDOW_START)
    make_batch(feed=push_feed, sequence=3, kind=Batch.Kind.TEST, window_start=WINDOW_START)

    selected = feed_batches(
        feed=push_feed, since=WINDOW_START, until=WINDOW_START + timedelta(hours=1)
    )

    assert list(selected) == [replacement]


def test_late_batches_are_selected_by_creation_not_by_their_window(push_feed: Feed):
    # A late batch's window starts at the feed's first window: long before the range.
    late = make_batch(
        feed=push_feed,
        kind=Batch.Kind.LATE,
        window_start=push_feed.deliver_from,
        window_end=WINDOW_START,
    )
    now = timezone.now()

    by_window = feed_batches(
        feed=push_feed, since=now - timedelta(minutes=5), until=now + timedelta(minutes=5)
    )
    old_range = feed_batches(
        feed=push_feed,
        since=push_feed.deliver_from,
        until=push_feed.deliver_from + timedelta(hours=1),
    )

    assert list(by_window) == [late]
    assert list(old_range) == []


def test_by_created_selects_every_batch_by_creation_time(push_feed: Feed):
    batch = make_batch(feed=push_feed, **window(0))
    now = timezone.now()

    selected = feed_batches(
        feed=push_feed,
        since=now - timedelta(minutes=5),
        until=now + timedelta(minutes=5),
        by=SelectBy.CREATED,
    )

    assert list(selected) == [batch]


# --- Re-build -------------------------------------------------------------------------


def test_a_rebuild_creates_new_batches_in_order_and_supersedes_the_old(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    first = make_batch(feed=push_feed, status=Status.DELIVERED, records=RECORDS, **window(0))
    second = make_batch(feed=push_feed, status=Status.FAILED, records=RECORDS, **window(1))
    ids = batch_ids(
        feed_batches(feed=push_feed, since=WINDOW_START, until=WINDOW_START + timedelta(hours=1))
    )

    with django_capture_on_commit_callbacks(execute=True):
        report = batches_rebuild(ids=ids)

    assert report.done == [first.pk, second.pk]
    first, second = fresh(first), fresh(second)
    assert first.status == second.status == Status.SUPERSEDED
    new_first = Batch.objects.get(pk=report.replaced_by[first.pk])
    new_second = Batch.objects.get(pk=report.replaced_by[second.pk])
    assert (first.superseded_by_id, second.superseded_by_id) == (new_first.pk, new_second.pk)
    assert (new_first.sequence, new_second.sequence) == (3, 4)
    assert new_first.window_start == first.window_start
    assert new_first.status == Status.PENDING
    assert queued.ids("delivery.build_batch") == [str(new_first.pk), str(new_second.pk)]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": Status.PENDING}, SkipReason.NOT_BUILT),
        ({"status": Status.SENDING}, SkipReason.IN_FLIGHT),
        ({"status": Status.SUPERSEDED}, SkipReason.SUPERSEDED),
        ({"status": Status.DELIVERED, "kind": Batch.Kind.TEST}, SkipReason.TEST),
    ],
)
def test_a_rebuild_skips_what_it_must_not_touch(
    push_feed: Feed, queued: QueuedTasks, fields: dict, reason: SkipReason
):
    batch = make_batch(feed=push_feed, **fields)

    report = batches_rebuild(ids=[batch.pk])

    assert report.skipped == {reason: [batch.pk]}
    assert fresh(batch).status == fields["status"]
    assert Batch.objects.count() == 1


def test_a_rebuild_dry_run_creates_nothing(push_feed: Feed, queued: QueuedTasks):
    batch = make_batch(feed=push_feed, status=Status.DELIVERED, records=RECORDS)

    report = batches_rebuild(ids=[batch.pk], dry_run=True)

    assert report.done == [batch.pk]
    assert report.replaced_by == {}
    assert fresh(batch).status == Status.DELIVERED
    assert Batch.objects.count() == 1


# --- Dead batches ---------------------------------------------------------------------


def test_dead_batches_are_the_failed_ones_of_feeds_we_deliver(push_feed: Feed, partner: Partner):
    dead = make_batch(feed=push_feed, status=Status.FAILED, **window(0))
    make_batch(feed=push_feed, status=Status.RETRY_SCHEDULED, **window(1))
    other = make_feed(partner=partner)
    dead_elsewhere = make_batch(feed=other, status=Status.FAILED, **window(0))

    assert set(dead_batches()) == {dead, dead_elsewhere}
    assert list(dead_batches(feed=push_feed)) == [dead]


def test_dead_batches_are_retried_in_bulk_with_a_fresh_budget(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    dead = [
        make_batch(
            feed=push_feed, status=Status.FAILED, records=RECORDS, attempt_count=8, **window(n)
        )
        for n in range(3)
    ]
    alive = make_batch(feed=push_feed, status=Status.DELIVERED, **window(3))

    with django_capture_on_commit_callbacks(execute=True):
        report = batches_retry_dead(ids=[*batch_ids(dead_batches(feed=push_feed)), alive.pk])

    assert report.done == [batch.pk for batch in dead]
    assert report.skipped == {SkipReason.NOT_DEAD: [alive.pk]}
    assert {fresh(batch).status for batch in dead} == {Status.READY}
    assert {fresh(batch).attempt_round_start for batch in dead} == {8}
    assert sorted(queued.ids("delivery.send_batch")) == sorted(str(b.pk) for b in dead)


# --- Admin ----------------------------------------------------------------------------


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("ops", "ops@example.com", "pw-ops-1")
    client = Client()
    client.force_login(user)
    return client


def test_the_replay_action_sends_batches_again_and_explains_skips(
    staff_client: Client, push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    delivered = make_batch(feed=push_feed, status=Status.DELIVERED, records=RECORDS, **window(0))
    building = make_batch(feed=push_feed, status=Status.BUILDING, **window(1))

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:delivery_batch_changelist"),
            {"action": "replay", "_selected_action": [delivered.pk, building.pk]},
            follow=True,
        )

    messages = [str(m) for m in response.context["messages"]]
    assert "1 of 2 batches queued for sending again." in messages
    assert any(m.startswith("1 skipped: in flight") for m in messages)
    assert queued.ids("delivery.send_batch") == [str(delivered.pk)]


def test_the_rebuild_action_explains_what_it_skipped(
    staff_client: Client, push_feed: Feed, queued: QueuedTasks
):
    pending = make_batch(feed=push_feed, status=Status.PENDING)

    response = staff_client.post(
        reverse("admin:delivery_batch_changelist"),
        {"action": "rebuild", "_selected_action": [pending.pk]},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert "0 of 1 batches superseded by new batches." in messages
    assert any(m.startswith("1 skipped: not built yet") for m in messages)


def test_superseded_and_test_batches_render_in_the_batch_list(
    staff_client: Client, push_feed: Feed
):
    make_batch(feed=push_feed, status=Status.SUPERSEDED, **window(0))
    make_batch(feed=push_feed, kind=Batch.Kind.TEST, status=Status.DELIVERED, **window(1))

    response = staff_client.get(reverse("admin:delivery_batch_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Superseded by a re-build" in html
    assert "Test delivery" in html
