"""batch_send: one signed POST per attempt, every attempt a row, retries only when transient."""

from __future__ import annotations

import gzip
import io
from datetime import timedelta

import pytest
import requests
import responses
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.services import batch_send
from partners.models import Feed, Partner
from partners.services import signing_secret_current, signing_secret_rotate
from tests.delivery.builders import make_batch
from tests.delivery.conftest import QueuedTasks, wait_until
from tests.factories import make_feed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_shared_store")]

URL = "http://127.0.0.1:9/ingest"
RECORDS = [{"campaign_id": "cmp-1", "event_id": f"evt-{n}"} for n in range(3)]
NDJSON = b"".join(f'{{"campaign_id":"cmp-1","event_id":"evt-{n}"}}\n'.encode() for n in range(3))
Outcome = DeliveryAttempt.Outcome


@pytest.fixture(autouse=True)
def quick_retries(settings) -> None:
    # Zero waits make a scheduled retry due at once, so tests can send again:
    # three attempts in all.
    settings.DELIVERY_RETRY_SCHEDULE = [0, 0]
    settings.DELIVERY_RETRY_AFTER_MAX_SECONDS = 3600
    settings.DELIVERY_TIMEOUT_SECONDS = 7
    # No slow-down pause after a 429/503: these tests send the same feed again at once.
    settings.DELIVERY_SLOWDOWN_PAUSE_SECONDS = 0
    settings.DELIVERY_CIRCUIT_MIN_REQUESTS = 1000


@pytest.fixture
def batch(push_feed: Feed) -> Batch:
    return make_batch(feed=push_feed, status=Batch.Status.READY, records=RECORDS)


def fresh(batch: Batch) -> Batch:
    return Batch.objects.get(pk=batch.pk)


def attempts(batch: Batch) -> list[DeliveryAttempt]:
    return list(DeliveryAttempt.objects.filter(batch=batch).order_by("number"))


@responses.activate
def test_a_2xx_reply_delivers_the_batch(batch: Batch, queued: QueuedTasks):
    responses.add(responses.POST, URL, status=202, body="ok")

    attempt = batch_send(batch_id=batch.pk, task_id="task-1")

    batch = fresh(batch)
    assert batch.status == Batch.Status.DELIVERED
    assert batch.delivered_at is not None
    assert batch.attempt_count == 1
    assert attempt is not None
    [row] = attempts(batch)
    assert (row.number, row.outcome, row.http_status, row.task_id) == (
        1,
        Outcome.SUCCEEDED,
        202,
        "task-1",
    )
    assert row.response_excerpt == "ok"
    assert row.finished_at is not None and row.duration_ms is not None
    assert queued.calls == []


@responses.activate
def test_a_500_then_a_200_delivers_once_with_two_attempts_under_one_webhook_id(
    batch: Batch, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    responses.add(responses.POST, URL, status=500, body="boom")
    responses.add(responses.POST, URL, status=200)

    with django_capture_on_commit_callbacks(execute=True):
        batch_send(batch_id=batch.pk, task_id="task-1")
    assert fresh(batch).status == Batch.Status.RETRY_SCHEDULED
    assert queued.ids("delivery.send_batch") == [str(batch.pk)]
    batch_send(batch_id=batch.pk, task_id="task-2")

    batch = fresh(batch)
    assert batch.status == Batch.Status.DELIVERED
    assert [(a.number, a.outcome, a.http_status) for a in attempts(batch)] == [
        (1, Outcome.TRANSIENT_FAILURE, 500),
        (2, Outcome.SUCCEEDED, 200),
    ]
    ids = {call.request.headers["webhook-id"] for call in responses.calls}
    assert ids == {str(batch.pk)}
    assert len(responses.calls) == 2


@responses.activate
def test_a_400_fails_the_batch_permanently_without_retry(
    batch: Batch, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    responses.add(responses.POST, URL, status=400, body='{"error":"bad schema"}')

    with django_capture_on_commit_callbacks(execute=True):
        batch_send(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.FAILED
    assert batch.next_attempt_at is None
    assert "HTTP 400" in batch.last_error
    [row] = attempts(batch)
    assert row.outcome == Outcome.PERMANENT_FAILURE
    assert row.response_excerpt == '{"error":"bad schema"}'
    assert queued.calls == []


@responses.activate
def test_a_redirect_is_a_permanent_failure(batch: Batch, queued: QueuedTasks):
    responses.add(responses.POST, URL, status=302, headers={"Location": "http://127.0.0.1:9/x"})

    batch_send(batch_id=batch.pk)

    assert fresh(batch).status == Batch.Status.FAILED
    assert len(responses.calls) == 1


@responses.activate
def test_a_refused_connection_schedules_a_retry(
    batch: Batch, queued: QueuedTasks, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_RETRY_SCHEDULE = [5, 300]
    responses.add(responses.POST, URL, body=requests.ConnectionError("connection refused"))
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        batch_send(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.RETRY_SCHEDULED
    # After attempt 1: the schedule's first wait, 5 s give or take 20 %.
    assert before + timedelta(seconds=4) <= batch.next_attempt_at
    assert batch.next_attempt_at <= timezone.now() + timedelta(seconds=6)
    [row] = attempts(batch)
    assert row.outcome == Outcome.TRANSIENT_FAILURE
    assert row.http_status is None
    assert "connection" in row.error
    [options] = queued.options("delivery.send_batch")
    assert 4 <= options["countdown"] <= 6


@responses.activate
def test_a_timeout_schedules_a_retry(batch: Batch, queued: QueuedTasks):
    responses.add(responses.POST, URL, body=requests.ReadTimeout("read timed out"))

    batch_send(batch_id=batch.pk)

    [row] = attempts(fresh(batch))
    assert fresh(batch).status == Batch.Status.RETRY_SCHEDULED
    assert row.outcome == Outcome.TRANSIENT_FAILURE
    assert row.error.startswith("timeout")


@responses.activate
def test_a_429_with_retry_after_waits_as_the_partner_asked(
    batch: Batch, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "120"})

    with django_capture_on_commit_callbacks(execute=True):
        batch_send(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.RETRY_SCHEDULED
    wait = batch.next_attempt_at - attempts(batch)[0].finished_at
    assert wait == timedelta(seconds=120)
    assert queued.options("delivery.send_batch")[0]["countdown"] == 120


@responses.activate
def test_a_retry_after_beyond_the_cap_is_capped(
    batch: Batch, queued: QueuedTasks, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_RETRY_AFTER_MAX_SECONDS = 60
    responses.add(responses.POST, URL, status=503, headers={"Retry-After": "86400"})

    with django_capture_on_commit_callbacks(execute=True):
        batch_send(batch_id=batch.pk)

    assert queued.options("delivery.send_batch")[0]["countdown"] == 60


@responses.activate
def test_a_retry_is_not_sent_before_it_is_due(batch: Batch, queued: QueuedTasks, settings):
    settings.DELIVERY_RETRY_SCHEDULE = [3600, 3600]
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "600"})
    batch_send(batch_id=batch.pk)

    assert batch_send(batch_id=batch.pk) is None
    assert len(responses.calls) == 1


@responses.activate
def test_the_batch_fails_once_the_attempts_are_exhausted(
    batch: Batch, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    responses.add(responses.POST, URL, status=503)

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            batch_send(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.FAILED
    assert batch.attempt_count == 3
    assert "gave up after 3 attempts" in batch.last_error
    assert [a.outcome for a in attempts(batch)] == [Outcome.TRANSIENT_FAILURE] * 3
    # Two retries were queued; the third failure queued nothing.
    assert len(queued.ids("delivery.send_batch")) == 2
    assert batch_send(batch_id=batch.pk) is None
    assert len(responses.calls) == 3


@responses.activate
@pytest.mark.parametrize("use_gzip", [True, False])
def test_the_signature_verifies_over_the_uncompressed_ndjson(
    partner: Partner, queued: QueuedTasks, use_gzip: bool
):
    feed = make_feed(partner=partner, gzip=use_gzip)
    batch = make_batch(feed=feed, status=Batch.Status.READY, records=RECORDS)
    responses.add(responses.POST, URL, status=200)

    batch_send(batch_id=batch.pk)

    request = responses.calls[0].request
    received = gzip.decompress(request.body) if use_gzip else request.body
    assert received == NDJSON
    headers = dict(request.headers)
    Webhook(signing_secret_current(partner_id=partner.pk)).verify(
        received, headers, json_parse=False
    )
    assert request.headers["Content-Type"] == "application/x-ndjson"
    assert request.headers.get("Content-Encoding") == ("gzip" if use_gzip else None)
    assert request.headers["webhook-timestamp"] == str(attempts(batch)[0].webhook_timestamp)


@responses.activate
def test_each_attempt_signs_with_the_secret_current_at_that_attempt(
    batch: Batch, partner: Partner, queued: QueuedTasks
):
    responses.add(responses.POST, URL, status=500)
    responses.add(responses.POST, URL, status=200)
    batch_send(batch_id=batch.pk)
    new_secret = signing_secret_rotate(partner=partner)

    batch_send(batch_id=batch.pk)

    second = responses.calls[1].request
    Webhook(new_secret).verify(gzip.decompress(second.body), dict(second.headers), json_parse=False)
    assert second.headers["webhook-timestamp"] == str(attempts(batch)[1].webhook_timestamp)


@responses.activate
def test_sending_twice_does_nothing_the_second_time(batch: Batch, queued: QueuedTasks):
    responses.add(responses.POST, URL, status=200)

    assert batch_send(batch_id=batch.pk) is not None
    assert batch_send(batch_id=batch.pk) is None

    assert len(responses.calls) == 1
    assert len(attempts(batch)) == 1


@pytest.mark.parametrize(
    "status",
    [Batch.Status.PENDING, Batch.Status.BUILDING, Batch.Status.EMPTY, Batch.Status.SENDING],
)
def test_batches_not_ready_are_not_sent(push_feed: Feed, queued: QueuedTasks, status: str):
    batch = make_batch(feed=push_feed, status=status, records=RECORDS)

    # Unregistered URLs are refused: a request would show up as an attempt.
    with responses.RequestsMock():
        assert batch_send(batch_id=batch.pk) is None

    assert fresh(batch).status == status
    assert attempts(batch) == []


def test_pull_batches_are_never_pushed(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, mode=Feed.Mode.PULL)
    batch = make_batch(feed=feed, status=Batch.Status.READY, records=RECORDS)

    with responses.RequestsMock():
        assert batch_send(batch_id=batch.pk) is None

    assert fresh(batch).status == Batch.Status.READY


def test_batches_of_a_paused_partner_wait_as_ready(
    batch: Batch, partner: Partner, queued: QueuedTasks
):
    partner.status = Partner.Status.PAUSED
    partner.save(update_fields=["status"])

    with responses.RequestsMock():
        assert batch_send(batch_id=batch.pk) is None

    assert fresh(batch).status == Batch.Status.READY


def test_a_missing_batch_is_ignored(db: None):
    assert batch_send(batch_id="00000000-0000-0000-0000-000000000000") is None


def test_an_endpoint_that_fails_validation_is_a_permanent_failure_without_traffic(
    batch: Batch, queued: QueuedTasks, settings, opened_bodies: list[io.BufferedReader]
):
    # With private endpoints forbidden, plain http to loopback is refused.
    settings.ALLOW_PRIVATE_ENDPOINTS = False

    with responses.RequestsMock():
        batch_send(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.FAILED
    [row] = attempts(batch)
    assert row.outcome == Outcome.PERMANENT_FAILURE
    assert "endpoint refused" in row.error
    # The body prepared meanwhile was opened, and is closed: nothing holds it.
    assert len(opened_bodies) == 1
    assert wait_until(lambda: all(file.closed for file in opened_bodies))


@responses.activate
@pytest.mark.parametrize("ending", ["sent", "stopped after it was prepared"])
def test_the_prepared_body_is_closed_however_the_attempt_ends(
    batch: Batch,
    queued: QueuedTasks,
    opened_bodies: list[io.BufferedReader],
    monkeypatch: pytest.MonkeyPatch,
    ending: str,
):
    responses.add(responses.POST, URL, status=200)
    if ending != "sent":

        def broken(batch: Batch) -> dict[str, str]:
            raise RuntimeError("headers bug")

        monkeypatch.setattr("gateway.delivery.sending.batch_headers", broken)

    batch_send(batch_id=batch.pk)

    assert len(opened_bodies) == 1
    assert wait_until(lambda: all(file.closed for file in opened_bodies))
    assert len(responses.calls) == (1 if ending == "sent" else 0)


def test_a_partner_without_an_active_secret_is_a_permanent_failure(
    batch: Batch, partner: Partner, queued: QueuedTasks
):
    partner.signing_secrets.update(revoked_at=timezone.now())

    with responses.RequestsMock():
        batch_send(batch_id=batch.pk)

    assert fresh(batch).status == Batch.Status.FAILED
    assert "signing secret" in attempts(batch)[0].error


@responses.activate
def test_an_unexpected_error_is_recorded_and_retried(
    batch: Batch, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    def broken(**kwargs: object) -> None:
        raise RuntimeError("transport bug")

    monkeypatch.setattr("gateway.delivery.sending.transport.post", broken)

    batch_send(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.RETRY_SCHEDULED
    assert "transport bug" in attempts(batch)[0].error


@responses.activate
def test_the_request_uses_the_configured_timeout(
    batch: Batch, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    seen: dict[str, object] = {}
    original = requests.Session.post

    def spy(self: requests.Session, *args: object, **kwargs: object) -> requests.Response:
        seen.update(kwargs)
        return original(self, *args, **kwargs)

    # The send goes through a session pinned to the checked address.
    monkeypatch.setattr(requests.Session, "post", spy)
    responses.add(responses.POST, URL, status=200)

    batch_send(batch_id=batch.pk)

    assert seen["timeout"] == 7
    assert seen["allow_redirects"] is False


@responses.activate
def test_a_batch_attempted_by_another_worker_since_it_was_read_is_not_claimed_again(
    batch: Batch, queued: QueuedTasks
):
    from gateway.delivery.sending import _attempt_start, _claim

    responses.add(responses.POST, URL, status=200)
    stale = Batch.objects.select_related("feed__partner").get(pk=batch.pk)
    # Another worker attempted it (and it is due again) after this one read it.
    Batch.objects.filter(pk=batch.pk).update(attempt_count=1)

    now = timezone.now()
    start = {"now": now, "webhook_timestamp": int(now.timestamp())}
    late = _attempt_start(batch=stale, claim=_claim(stale, now=now), task_id="late", **start)
    assert late is None
    assert not DeliveryAttempt.objects.filter(batch=batch).exists()

    fresh = Batch.objects.select_related("feed__partner").get(pk=batch.pk)
    attempt = _attempt_start(batch=fresh, claim=_claim(fresh, now=now), task_id="current", **start)
    assert attempt is not None and attempt.number == fresh.attempt_count == 2
    assert Batch.objects.get(pk=batch.pk).attempt_count == 2
