"""batch_send with feed and endpoint health: gone, slow down, breakers, limits, auto-disable."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import requests
import responses
from django.utils import timezone

from gateway.delivery import circuit, health, sending
from gateway.delivery.limits import slot_acquire, slot_release, slots_in_use, slowdown_get
from gateway.delivery.limits import slowdown_note as note_slowdown
from gateway.delivery.models import Batch, DeliveryAttempt, FeedNotice
from gateway.delivery.services import batch_send, batches_sweep
from partners.models import Feed, Partner
from tests.delivery.builders import make_batch
from tests.delivery.conftest import QueuedTasks, wait_until
from tests.delivery.loopback import LoopbackServer
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/ingest"
OTHER_URL = "http://127.0.0.1:10/ingest"
RECORDS = [{"campaign_id": "cmp-1", "event_id": f"evt-{n}"} for n in range(3)]
Outcome = DeliveryAttempt.Outcome


@pytest.fixture(autouse=True)
def health_settings(settings, clean_shared_store: None):
    settings.DELIVERY_RETRY_SCHEDULE = [0, 0]
    settings.DELIVERY_SLOWDOWN_PAUSE_SECONDS = 5
    settings.DELIVERY_SLOWDOWN_SECONDS = 300
    settings.DELIVERY_SLOWDOWN_MAX_LEVEL = 3
    settings.DELIVERY_BUSY_RETRY_SECONDS = 2
    settings.DELIVERY_CIRCUIT_MIN_REQUESTS = 1000
    settings.DELIVERY_CIRCUIT_OPEN_SECONDS = 60
    settings.ALERT_EMAILS = []
    settings.ALERT_WEBHOOK_URL = ""


@pytest.fixture
def alert_hook(settings):
    """A loopback server receiving the alert webhook; responses lets its requests through."""
    with LoopbackServer(status=204) as hook:
        settings.ALERT_WEBHOOK_URL = hook.url + "/alerts"
        responses.add_passthru(hook.url)
        yield hook


def ready_batch(feed: Feed, sequence: int = 1, **fields) -> Batch:
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    return make_batch(
        feed=feed,
        sequence=sequence,
        window_start=start + timedelta(minutes=sequence),
        status=Batch.Status.READY,
        records=RECORDS,
        **fields,
    )


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def last_countdown(queued: QueuedTasks) -> float:
    return queued.options("delivery.send_batch")[-1]["countdown"]


def send(batch: Batch, capture) -> DeliveryAttempt | None:
    with capture(execute=True):
        return batch_send(batch_id=batch.pk)


def assert_not_attempted(batch: Batch, *, reason: str) -> Batch:
    batch = fresh(batch)
    assert batch.attempt_count == 0
    assert not batch.attempts.exists()
    assert batch.status == Batch.Status.READY
    assert batch.next_attempt_at is not None and batch.next_attempt_at > timezone.now()
    assert reason in batch.last_error
    return batch


@dataclass
class SendSteps:
    """What sends did, in order: the thread each permit was asked on, and claims."""

    asked_on: list[threading.Thread] = field(default_factory=list)
    # At each claim, how many permits had been asked for.
    claims: list[int] = field(default_factory=list)


def send_steps_noted(
    monkeypatch: pytest.MonkeyPatch, *, permit: Callable[..., Any] | None = None
) -> SendSteps:
    """Note each permit asked for (``permit`` answers, else the real one) and each claim."""
    steps = SendSteps()
    ask = permit or health.send_permit
    claim = sending._attempt_start

    def asking(**kwargs: Any) -> Any:
        steps.asked_on.append(threading.current_thread())
        return ask(**kwargs)

    def claiming(**kwargs: Any) -> Any:
        steps.claims.append(len(steps.asked_on))
        return claim(**kwargs)

    monkeypatch.setattr(health, "send_permit", asking)
    monkeypatch.setattr(sending, "_attempt_start", claiming)
    return steps


# --- 410 Gone --------------------------------------------------------------------------


@responses.activate
def test_a_410_disables_the_feed_with_a_notice_and_an_alert(
    push_feed: Feed, queued: QueuedTasks, alert_hook, django_capture_on_commit_callbacks
):
    responses.add(responses.POST, URL, status=410)
    batch = ready_batch(push_feed)
    waiting = ready_batch(push_feed, sequence=2)

    send(batch, django_capture_on_commit_callbacks)

    assert fresh(batch).status == Batch.Status.FAILED
    feed = fresh(push_feed)
    assert not feed.enabled
    assert "410 Gone" in feed.disabled_reason
    assert feed.disabled_at is not None
    notice = FeedNotice.objects.get(feed=feed)
    assert (notice.code, notice.level) == ("gone", FeedNotice.Level.ERROR)
    assert "410 Gone" in notice.message
    [alert] = alert_hook.received
    assert alert.json()["code"] == "gone"
    assert alert.json()["feed"] == str(feed)
    # Nothing more goes to a gone endpoint: no retry, and the feed's other batches wait.
    assert queued.calls == []
    assert batch_send(batch_id=waiting.pk) is None
    assert len(responses.calls) == 1


# --- Slow down (429, 502, 503, 504) ---------------------------------------------------------


@responses.activate
def test_a_429_pauses_the_whole_feed_for_its_retry_after_without_attempts(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "30"})
    batch = ready_batch(push_feed)
    other = ready_batch(push_feed, sequence=2)

    send(batch, django_capture_on_commit_callbacks)
    assert last_countdown(queued) == 30
    assert send(other, django_capture_on_commit_callbacks) is None

    assert_not_attempted(other, reason="slow down")
    assert 30 * 0.9 <= last_countdown(queued) <= 30 * 1.1
    assert len(responses.calls) == 1
    assert slowdown_get(feed_id=push_feed.pk).level == 1
    # The paused send took a slot as it read the pause, and gave it straight back.
    assert slots_in_use(feed_id=push_feed.pk, limit=push_feed.max_concurrency) == 0


@responses.activate
@pytest.mark.parametrize("status", [502, 503, 504])
def test_an_overloaded_partner_pauses_the_feed_for_the_configured_time(
    push_feed: Feed, queued: QueuedTasks, status: int, django_capture_on_commit_callbacks
):
    responses.add(responses.POST, URL, status=status)
    batch = ready_batch(push_feed)
    other = ready_batch(push_feed, sequence=2)

    send(batch, django_capture_on_commit_callbacks)
    assert send(other, django_capture_on_commit_callbacks) is None

    assert_not_attempted(other, reason="slow down")
    assert 4 <= last_countdown(queued) <= 6


@responses.activate
def test_a_500_retries_without_slowing_the_feed_down(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    responses.add(responses.POST, URL, status=500)
    responses.add(responses.POST, URL, status=200)
    send(ready_batch(push_feed), django_capture_on_commit_callbacks)

    assert send(ready_batch(push_feed, sequence=2), django_capture_on_commit_callbacks)
    assert slowdown_get(feed_id=push_feed.pk).level == 0


def test_after_the_pause_a_slowed_feed_runs_at_half_its_concurrency(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = make_feed(partner=partner, max_concurrency=2)
    note_slowdown(feed_id=feed.pk, pause_seconds=0, now=time.time(), max_level=3, hold_seconds=300)
    slot_acquire(feed_id=feed.pk, limit=1, lease_seconds=60)
    batch = ready_batch(feed)

    with responses.RequestsMock():
        send(batch, django_capture_on_commit_callbacks)

    assert_not_attempted(batch, reason="concurrency limit")
    # Slot 1 was free, but beyond the halved limit: taken and given back.
    assert slots_in_use(feed_id=feed.pk, limit=2) == 1


# --- Concurrency and rates ------------------------------------------------------------------


@responses.activate
def test_a_send_that_finds_no_free_slot_is_requeued_without_an_attempt(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = make_feed(partner=partner, max_concurrency=1)
    held = slot_acquire(feed_id=feed.pk, limit=1, lease_seconds=60)
    batch = ready_batch(feed)

    assert send(batch, django_capture_on_commit_callbacks) is None

    assert_not_attempted(batch, reason="concurrency limit")
    assert queued.ids("delivery.send_batch") == [str(batch.pk)]
    assert 2 <= last_countdown(queued) <= 4
    assert len(responses.calls) == 0

    slot_release(held)
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())
    responses.add(responses.POST, URL, status=200)
    attempt = send(batch, django_capture_on_commit_callbacks)

    assert attempt is not None and attempt.number == 1
    assert fresh(batch).status == Batch.Status.DELIVERED
    assert slots_in_use(feed_id=feed.pk, limit=1) == 0


def test_a_duplicate_message_of_a_waiting_send_does_nothing(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = make_feed(partner=partner, max_concurrency=1)
    slot_acquire(feed_id=feed.pk, limit=1, lease_seconds=60)
    batch = ready_batch(feed)

    with responses.RequestsMock():
        send(batch, django_capture_on_commit_callbacks)
        send(batch, django_capture_on_commit_callbacks)

    assert len(queued.ids("delivery.send_batch")) == 1


@responses.activate
def test_waiting_for_a_slot_costs_no_retry_budget(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = make_feed(partner=partner, max_concurrency=1, retry_schedule=[0])
    responses.add(responses.POST, URL, status=500)
    batch = ready_batch(feed)
    send(batch, django_capture_on_commit_callbacks)
    held = slot_acquire(feed_id=feed.pk, limit=1, lease_seconds=60)
    for _ in range(3):
        Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())
        assert send(batch, django_capture_on_commit_callbacks) is None
    slot_release(held)
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())

    send(batch, django_capture_on_commit_callbacks)

    batch = fresh(batch)
    assert batch.status == Batch.Status.FAILED
    assert batch.attempt_count == 2
    assert "gave up after 2 attempts" in batch.last_error


@responses.activate
def test_the_slot_is_freed_even_when_the_attempt_crashes(
    push_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    def broken(**kwargs: object) -> None:
        raise RuntimeError("transport bug")

    monkeypatch.setattr("gateway.delivery.sending.transport.post", broken)

    batch_send(batch_id=ready_batch(push_feed).pk)

    assert slots_in_use(feed_id=push_feed.pk, limit=push_feed.max_concurrency) == 0


@responses.activate
def test_a_failure_noting_the_outcome_loses_neither_the_record_nor_the_slot(
    push_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    def broken(**kwargs: object) -> None:
        raise ConnectionError("the shared store went away")

    monkeypatch.setattr("gateway.delivery.health.circuit.circuit_record", broken)
    responses.add(responses.POST, URL, status=200)
    batch = ready_batch(push_feed)

    attempt = batch_send(batch_id=batch.pk)

    assert attempt is not None
    assert fresh(attempt).outcome == Outcome.SUCCEEDED
    assert fresh(batch).status == Batch.Status.DELIVERED
    assert slots_in_use(feed_id=push_feed.pk, limit=push_feed.max_concurrency) == 0


@responses.activate
def test_the_shared_store_learns_the_outcome_while_postgresql_records_it(
    push_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    """Two round trips at once: the note runs on a send thread, not after the outcome's commit."""
    noted = threading.Event()
    note = health.outcome_note

    def noting(**kwargs: Any) -> Any:
        assert threading.current_thread() is not threading.main_thread()
        try:
            return note(**kwargs)
        finally:
            noted.set()

    finish = sending._attempt_finish

    def finishing(**kwargs: Any) -> None:
        assert noted.wait(timeout=10), "the outcome was noted only after it was recorded"
        finish(**kwargs)

    monkeypatch.setattr(health, "outcome_note", noting)
    monkeypatch.setattr(sending, "_attempt_finish", finishing)
    responses.add(responses.POST, URL, status=503)
    batch = ready_batch(push_feed)

    batch_send(batch_id=batch.pk)

    assert fresh(batch).status == Batch.Status.RETRY_SCHEDULED
    assert slowdown_get(feed_id=push_feed.pk).level == 1
    assert circuit.circuit_snapshot(endpoint_url=URL).requests == 1
    assert slots_in_use(feed_id=push_feed.pk, limit=push_feed.max_concurrency) == 0


# --- The permit beside the claim ----------------------------------------------------------


@responses.activate
def test_the_permit_is_asked_for_while_postgresql_claims_the_batch(
    push_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    """Two round trips at once: each side waits to see the other under way."""
    asking, claiming = threading.Event(), threading.Event()
    permit = health.send_permit
    claim = sending._attempt_start

    def asking_permit(**kwargs: Any) -> Any:
        assert threading.current_thread() is not threading.main_thread()
        asking.set()
        assert claiming.wait(timeout=10), "the permit was asked for only after the claim"
        return permit(**kwargs)

    def claiming_batch(**kwargs: Any) -> Any:
        claiming.set()
        assert asking.wait(timeout=10), "the claim waited for the permit"
        return claim(**kwargs)

    monkeypatch.setattr(health, "send_permit", asking_permit)
    monkeypatch.setattr(sending, "_attempt_start", claiming_batch)
    responses.add(responses.POST, URL, status=200)
    batch = ready_batch(push_feed)

    attempt = batch_send(batch_id=batch.pk)

    assert attempt is not None and attempt.number == 1
    assert fresh(batch).status == Batch.Status.DELIVERED
    assert slots_in_use(feed_id=push_feed.pk, limit=push_feed.max_concurrency) == 0


@responses.activate
def test_a_feed_refused_lately_asks_before_it_claims(
    partner: Partner,
    queued: QueuedTasks,
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
):
    """A refusal undone after the claim costs two writes; where refusals are likely, none."""
    feed = make_feed(partner=partner, max_concurrency=1)
    held = slot_acquire(feed_id=feed.pk, limit=1, lease_seconds=60)
    batch = ready_batch(feed)
    send(batch, django_capture_on_commit_callbacks)  # refused after its claim: undone
    steps = send_steps_noted(monkeypatch)
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())

    assert send(batch, django_capture_on_commit_callbacks) is None

    assert steps.claims == []  # refused again, with no claim to undo
    assert_not_attempted(batch, reason="concurrency limit")

    slot_release(held)
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())
    responses.add(responses.POST, URL, status=200)
    attempt = send(batch, django_capture_on_commit_callbacks)

    assert attempt is not None and attempt.number == 1
    assert steps.claims == [2]  # claimed once the permit was in hand
    assert steps.asked_on == [threading.main_thread()] * 2
    assert fresh(batch).status == Batch.Status.DELIVERED


@responses.activate
def test_a_refusal_is_remembered_for_a_while_only(
    partner: Partner,
    queued: QueuedTasks,
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(health, "_REFUSAL_MEMORY_SECONDS", 0.05)
    feed = make_feed(partner=partner, max_concurrency=1)
    held = slot_acquire(feed_id=feed.pk, limit=1, lease_seconds=60)
    batch = ready_batch(feed)
    send(batch, django_capture_on_commit_callbacks)
    slot_release(held)
    time.sleep(0.1)
    steps = send_steps_noted(monkeypatch)
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())
    responses.add(responses.POST, URL, status=200)

    assert send(batch, django_capture_on_commit_callbacks) is not None

    assert len(steps.asked_on) == 1 and steps.asked_on[0] is not threading.main_thread()


@responses.activate
def test_a_retry_that_must_wait_keeps_its_status_and_its_attempts(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = make_feed(partner=partner, max_concurrency=1)
    responses.add(responses.POST, URL, status=500)
    batch = ready_batch(feed)
    send(batch, django_capture_on_commit_callbacks)
    slot_acquire(feed_id=feed.pk, limit=1, lease_seconds=60)
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())

    assert send(batch, django_capture_on_commit_callbacks) is None

    batch = fresh(batch)
    assert batch.status == Batch.Status.RETRY_SCHEDULED
    assert batch.attempt_count == 1
    assert list(batch.attempts.values_list("number", flat=True)) == [1]
    assert batch.claimed_at is None
    assert batch.next_attempt_at is not None and batch.next_attempt_at > timezone.now()
    assert "concurrency limit" in batch.last_error
    assert len(responses.calls) == 1


@responses.activate
def test_a_permit_the_shared_store_fails_to_give_leaves_the_batch_unclaimed(
    push_feed: Feed,
    queued: QueuedTasks,
    opened_bodies: list[io.BufferedReader],
    monkeypatch: pytest.MonkeyPatch,
):
    def broken(**kwargs: Any) -> None:
        raise ConnectionError("the shared store went away")

    monkeypatch.setattr(health, "send_permit", broken)
    batch = ready_batch(push_feed)

    with pytest.raises(ConnectionError):
        batch_send(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.READY
    assert (batch.attempt_count, batch.claimed_at, batch.next_attempt_at) == (0, None, None)
    assert not batch.attempts.exists()
    assert len(responses.calls) == 0
    assert wait_until(lambda: all(file.closed for file in opened_bodies))


@responses.activate
def test_a_shared_store_that_failed_is_asked_before_the_next_claim(
    push_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    def broken(**kwargs: Any) -> None:
        raise ConnectionError("the shared store went away")

    steps = send_steps_noted(monkeypatch, permit=broken)
    batch = ready_batch(push_feed)
    with pytest.raises(ConnectionError):
        batch_send(batch_id=batch.pk)  # claimed while asking, then undone

    with pytest.raises(ConnectionError):
        batch_send(batch_id=batch.pk)

    assert len(steps.claims) == 1  # the second send asked first, and claimed nothing
    assert steps.asked_on[1] is threading.main_thread()
    assert not fresh(batch).attempts.exists()


@responses.activate
def test_a_claim_lost_to_another_worker_gives_the_permit_back(
    push_feed: Feed,
    queued: QueuedTasks,
    opened_bodies: list[io.BufferedReader],
    monkeypatch: pytest.MonkeyPatch,
):
    claim = sending._attempt_start

    def claimed_by_another_first(**kwargs: Any) -> Any:
        Batch.objects.filter(pk=kwargs["batch"].pk).update(
            status=Batch.Status.SENDING, attempt_count=1, claimed_at=timezone.now()
        )
        return claim(**kwargs)

    monkeypatch.setattr(sending, "_attempt_start", claimed_by_another_first)
    batch = ready_batch(push_feed)

    assert batch_send(batch_id=batch.pk) is None

    assert not batch.attempts.exists()
    assert fresh(batch).status == Batch.Status.SENDING  # the other worker's to finish
    assert slots_in_use(feed_id=push_feed.pk, limit=push_feed.max_concurrency) == 0
    assert len(responses.calls) == 0
    assert wait_until(lambda: all(file.closed for file in opened_bodies))


@responses.activate
def test_requests_per_second_spread_the_sends_of_a_feed(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = make_feed(partner=partner, max_requests_per_second=1)
    responses.add(responses.POST, URL, status=200)
    first, second = ready_batch(feed), ready_batch(feed, sequence=2)

    started = time.monotonic()
    assert send(first, django_capture_on_commit_callbacks) is not None
    assert send(second, django_capture_on_commit_callbacks) is None
    elapsed = time.monotonic() - started

    assert_not_attempted(second, reason="rate limit")
    # The rest of the second since the first send (however slow the machine), plus
    # up to a tenth of it as jitter.
    assert 1.0 - elapsed - 0.01 <= last_countdown(queued) <= 1.1 + 0.01
    assert len(responses.calls) == 1


@responses.activate
def test_events_per_second_count_the_events_of_each_batch(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    # Three events a batch at two a second: the first goes, the next waits ~1.5 s.
    feed = make_feed(partner=partner, max_events_per_second=2)
    responses.add(responses.POST, URL, status=200)
    first, second = ready_batch(feed), ready_batch(feed, sequence=2)

    started = time.monotonic()
    assert send(first, django_capture_on_commit_callbacks) is not None
    assert send(second, django_capture_on_commit_callbacks) is None
    elapsed = time.monotonic() - started

    assert_not_attempted(second, reason="rate limit")
    # 1.5 s of the limit owed since the first send, plus up to a tenth as jitter.
    assert 1.5 - elapsed - 0.01 <= last_countdown(queued) <= 1.5 * 1.1 + 0.01


# --- Circuit breaker -------------------------------------------------------------------------


@responses.activate
def test_while_the_circuit_is_open_sends_wait_without_attempts(
    push_feed: Feed,
    partner: Partner,
    queued: QueuedTasks,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.DELIVERY_CIRCUIT_MIN_REQUESTS = 2
    responses.add(responses.POST, URL, status=500)
    responses.add(responses.POST, OTHER_URL, status=200)
    for sequence in (1, 2):
        send(ready_batch(push_feed, sequence=sequence), django_capture_on_commit_callbacks)
    notice = FeedNotice.objects.get(feed=push_feed)
    assert notice.code == "circuit_open"
    assert circuit.circuit_snapshot(endpoint_url=URL).state == "open"
    waiting = ready_batch(push_feed, sequence=3)

    assert send(waiting, django_capture_on_commit_callbacks) is None

    assert_not_attempted(waiting, reason="circuit open")
    assert 59 <= last_countdown(queued) <= 68
    assert slots_in_use(feed_id=push_feed.pk, limit=push_feed.max_concurrency) == 0
    assert len(responses.calls) == 2
    # Another endpoint is not affected.
    elsewhere = make_feed(partner=partner, endpoint_url=OTHER_URL)
    assert send(ready_batch(elsewhere), django_capture_on_commit_callbacks) is not None


def _half_open(settings) -> None:
    """Open the breaker of URL long enough ago that it is half-open now."""
    settings.DELIVERY_CIRCUIT_MIN_REQUESTS = 1
    past = time.time() - settings.DELIVERY_CIRCUIT_OPEN_SECONDS - 1
    assert circuit.circuit_record(endpoint_url=URL, failed=True, now=past) == "opened"
    assert circuit.circuit_snapshot(endpoint_url=URL).state == "half_open"


@responses.activate
def test_a_successful_probe_closes_the_circuit(
    push_feed: Feed, queued: QueuedTasks, settings, django_capture_on_commit_callbacks
):
    _half_open(settings)
    responses.add(responses.POST, URL, status=200)

    assert send(ready_batch(push_feed), django_capture_on_commit_callbacks) is not None

    assert circuit.circuit_snapshot(endpoint_url=URL).state == "closed"


@responses.activate
def test_a_failed_probe_opens_the_circuit_again(
    push_feed: Feed, queued: QueuedTasks, settings, django_capture_on_commit_callbacks
):
    _half_open(settings)
    responses.add(responses.POST, URL, body=requests.ConnectionError("refused"))

    send(ready_batch(push_feed), django_capture_on_commit_callbacks)

    assert circuit.circuit_snapshot(endpoint_url=URL).state == "open"


def test_while_the_probe_is_out_other_sends_wait(
    push_feed: Feed, queued: QueuedTasks, settings, django_capture_on_commit_callbacks
):
    _half_open(settings)
    circuit.circuit_admit(endpoint_url=URL, now=time.time(), probe_lease_seconds=60)
    batch = ready_batch(push_feed)

    with responses.RequestsMock():
        send(batch, django_capture_on_commit_callbacks)

    assert_not_attempted(batch, reason="circuit half-open")


# --- Auto-disable ----------------------------------------------------------------------------


def failed_attempt(feed: Feed, *, hours_ago: float, outcome: str = Outcome.TRANSIENT_FAILURE):
    """An attempt of an earlier batch of ``feed``, started ``hours_ago``."""
    started = timezone.now() - timedelta(hours=hours_ago)
    sequence = Batch.objects.filter(feed=feed).count() + 100
    earlier = make_batch(
        feed=feed,
        sequence=sequence,
        window_start=started.replace(microsecond=0) - timedelta(minutes=sequence),
        status=Batch.Status.FAILED,
    )
    return DeliveryAttempt.objects.create(
        batch=earlier, number=1, started_at=started, webhook_timestamp=1, outcome=outcome
    )


@responses.activate
def test_a_feed_failing_longer_than_its_limit_is_disabled_with_a_notice_and_an_alert(
    partner: Partner, queued: QueuedTasks, alert_hook, django_capture_on_commit_callbacks
):
    feed = make_feed(partner=partner, auto_disable_after_hours=2)
    failed_attempt(feed, hours_ago=3)
    failed_attempt(feed, hours_ago=1)
    responses.add(responses.POST, URL, status=500)

    send(ready_batch(feed), django_capture_on_commit_callbacks)

    feed = fresh(feed)
    assert not feed.enabled
    assert "more than 2 h" in feed.disabled_reason
    notice = FeedNotice.objects.get(feed=feed, code="feed_disabled")
    assert notice.level == FeedNotice.Level.ERROR
    [alert] = alert_hook.received
    assert alert.json()["code"] == "feed_disabled"
    assert alert.json()["feed_id"] == feed.pk


@responses.activate
@pytest.mark.parametrize(
    ("limit_hours", "history"),
    [
        (2, [("fail", 1.5)]),  # the streak is younger than the limit
        (2, [("fail", 5), ("ok", 1)]),  # a success ended the old streak
        (0, [("fail", 500)]),  # 0 = never
    ],
)
def test_a_feed_is_not_disabled_before_a_whole_streak_of_failures(
    partner: Partner,
    queued: QueuedTasks,
    limit_hours: int,
    history,
    django_capture_on_commit_callbacks,
):
    feed = make_feed(partner=partner, auto_disable_after_hours=limit_hours)
    for kind, hours_ago in history:
        outcome = Outcome.SUCCEEDED if kind == "ok" else Outcome.TRANSIENT_FAILURE
        failed_attempt(feed, hours_ago=hours_ago, outcome=outcome)
    responses.add(responses.POST, URL, status=500)

    send(ready_batch(feed), django_capture_on_commit_callbacks)

    assert fresh(feed).enabled
    assert not FeedNotice.objects.filter(feed=feed).exists()


@responses.activate
def test_a_re_enabled_feed_starts_a_fresh_streak(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = make_feed(
        partner=partner,
        auto_disable_after_hours=2,
        disabled_at=timezone.now() - timedelta(minutes=10),
    )
    failed_attempt(feed, hours_ago=5)
    responses.add(responses.POST, URL, status=500)

    send(ready_batch(feed), django_capture_on_commit_callbacks)

    assert fresh(feed).enabled


@responses.activate
def test_a_broken_alert_hook_never_breaks_the_delivery(
    partner: Partner, queued: QueuedTasks, settings, django_capture_on_commit_callbacks
):
    with LoopbackServer(status=500) as hook:
        settings.ALERT_WEBHOOK_URL = hook.url
        responses.add_passthru(hook.url)
        feed = make_feed(partner=partner)
        responses.add(responses.POST, URL, status=410)
        batch = ready_batch(feed)

        attempt = send(batch, django_capture_on_commit_callbacks)

        assert len(hook.received) == 1
    assert attempt is not None
    assert fresh(batch).status == Batch.Status.FAILED
    assert not fresh(feed).enabled


# --- Schedule per feed, Retry-After -----------------------------------------------------------


@responses.activate
def test_a_feed_schedule_sets_the_waits_and_the_number_of_attempts(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = make_feed(partner=partner, retry_schedule=[7, 9], retry_jitter_pct=0)
    responses.add(responses.POST, URL, status=500)
    batch = ready_batch(feed)

    for _ in range(3):
        send(batch, django_capture_on_commit_callbacks)
        Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())

    assert [o["countdown"] for o in queued.options("delivery.send_batch")] == [7, 9]
    batch = fresh(batch)
    assert batch.status == Batch.Status.FAILED
    assert "gave up after 3 attempts" in batch.last_error


@responses.activate
@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("0", 1), ("garbage", 7), ("99999999", 3600), (None, 7)],
)
def test_retry_after_replaces_the_scheduled_wait_within_bounds(
    partner: Partner,
    queued: QueuedTasks,
    retry_after: str | None,
    expected: float,
    django_capture_on_commit_callbacks,
):
    feed = make_feed(partner=partner, retry_schedule=[7], retry_jitter_pct=0)
    headers = {"Retry-After": retry_after} if retry_after else {}
    responses.add(responses.POST, URL, status=500, headers=headers)

    send(ready_batch(feed), django_capture_on_commit_callbacks)

    assert last_countdown(queued) == expected


@responses.activate
def test_retry_after_as_an_http_date(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    from email.utils import format_datetime

    feed = make_feed(partner=partner, retry_schedule=[7], retry_jitter_pct=0)
    when = format_datetime(timezone.now() + timedelta(seconds=120), usegmt=True)
    responses.add(responses.POST, URL, status=500, headers={"Retry-After": when})

    send(ready_batch(feed), django_capture_on_commit_callbacks)

    assert 115 <= last_countdown(queued) <= 121


# --- Sweeper ---------------------------------------------------------------------------------


def test_the_sweeper_leaves_a_waiting_send_alone_until_its_time_is_well_past(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    now = timezone.now()
    batch = ready_batch(
        push_feed,
        queued_at=now - timedelta(minutes=30),
        next_attempt_at=now + timedelta(minutes=10),
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert batches_sweep(now=now) == 0
        assert batches_sweep(now=now + timedelta(minutes=16)) == 1

    assert queued.ids("delivery.send_batch") == [str(batch.pk)]
