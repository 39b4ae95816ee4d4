"""One failing partner never delays another: a real worker, Redis, PostgreSQL, loopback partners.

Partner A's endpoint accepts the connection and then says nothing for longer
than the worker's request timeout. Partner B's answers in 50 ms. B's latency
(queued to delivered) is measured alone, then again while A's sends hang;
with A's feed limited to one send at a time and the worker running four, the
other A sends go back to the queue instead of taking the worker's processes,
and B does not notice.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.storage import batch_storage
from partners.models import Feed
from tests.delivery.builders import make_batch
from tests.delivery.loopback import LoopbackServer
from tests.factories import make_feed, make_partner
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 3
A_SILENCE_SECONDS = 10  # longer than the timeout: every attempt to A times out
WORKER_CONCURRENCY = 4
RECORDS = [{"campaign_id": "cmp-1", "event_id": f"evt-{n}"} for n in range(5)]
_sequence = iter(range(1, 10_000))


def _ready(feed: Feed) -> Batch:
    n = next(_sequence)
    start = timezone.now().replace(microsecond=0) - timedelta(days=1) + timedelta(minutes=n)
    return make_batch(
        feed=feed, sequence=n, window_start=start, status=Batch.Status.READY, records=RECORDS
    )


def _enqueue(batch: Batch) -> datetime:
    queued_at = timezone.now()
    celery_app.send_task("delivery.send_batch", args=[str(batch.pk)], queue="delivery")
    return queued_at


def _send_spaced(feed: Feed, count: int, *, every: float) -> list[tuple[Batch, datetime]]:
    sent = []
    for _ in range(count):
        batch = _ready(feed)
        sent.append((batch, _enqueue(batch)))
        time.sleep(every)
    return sent


def _latencies(sent: list[tuple[Batch, datetime]]) -> list[float]:
    def all_delivered() -> bool:
        ids = [batch.pk for batch, _ in sent]
        return Batch.objects.filter(pk__in=ids, status=Batch.Status.DELIVERED).count() == len(ids)

    wait_until(all_delivered, timeout=30, what=f"{len(sent)} batches of B delivered")
    delivered = dict(
        Batch.objects.filter(pk__in=[b.pk for b, _ in sent]).values_list("pk", "delivered_at")
    )
    return [(delivered[batch.pk] - queued_at).total_seconds() for batch, queued_at in sent]


def _most_at_once(attempts: list[tuple[datetime, datetime | None]]) -> int:
    """The most attempts running at the same moment (a few ms of bookkeeping forgiven)."""
    slack = timedelta(milliseconds=50)
    now = timezone.now()
    events: list[tuple[datetime, int]] = []
    for started, finished in attempts:
        events += [(started + slack, 1), ((finished or now) - slack, -1)]
    running = most = 0
    for _, step in sorted(events):
        running += step
        most = max(most, running)
    return most


def test_a_partner_that_times_out_does_not_delay_another(
    start_celery, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        LoopbackServer(status=200, delay=A_SILENCE_SECONDS) as a_server,
        LoopbackServer(status=200, delay=0.05) as b_server,
    ):
        feed_a = make_feed(
            partner=make_partner(slug="slow-a"),
            endpoint_url=a_server.url + "/ingest",
            max_concurrency=1,
        )
        feed_b = make_feed(partner=make_partner(slug="fast-b"), endpoint_url=b_server.url + "/in")
        start_celery(
            concurrency=WORKER_CONCURRENCY,
            extra_env={
                "DELIVERY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
                "DELIVERY_BUSY_RETRY_SECONDS": "1",
                # A keeps being tried (no open circuit) for the whole test.
                "DELIVERY_CIRCUIT_MIN_REQUESTS": "1000",
                # The worker reads the bodies this process wrote.
                "BATCH_STORAGE_DIR": str(batch_storage().location),
            },
        )
        # Warm every worker process up (connections, imports) before measuring.
        _latencies(_send_spaced(feed_b, WORKER_CONCURRENCY, every=0))
        alone = _latencies(_send_spaced(feed_b, 8, every=0.25))

        a_batches = [_ready(feed_a) for _ in range(8)]
        for batch in a_batches:
            _enqueue(batch)
        wait_until(lambda: a_server.received, timeout=10, what="A's first request")
        beside_a = _latencies(_send_spaced(feed_b, 8, every=0.25))
        b_done = max(Batch.objects.filter(feed=feed_b).values_list("delivered_at", flat=True))
        first_a = DeliveryAttempt.objects.filter(batch__feed=feed_a).order_by("started_at")[0]
        wait_until(
            lambda: DeliveryAttempt.objects.filter(
                batch__feed=feed_a, error__startswith="timeout"
            ).exists(),
            timeout=TIMEOUT_SECONDS + 10,
            what="an attempt to A timing out",
        )
        first_a.refresh_from_db()
        a_attempts = list(
            DeliveryAttempt.objects.filter(batch__feed=feed_a).values_list(
                "started_at", "finished_at"
            )
        )
        a_states = list(
            Batch.objects.filter(feed=feed_a).values_list("attempt_count", "last_error", "status")
        )

    with capsys.disabled():
        print(
            f"\nB latency alone: max {max(alone):.3f}s {sorted(round(x, 3) for x in alone)}"
            f"\nB latency while A times out: max {max(beside_a):.3f}s "
            f"{sorted(round(x, 3) for x in beside_a)}"
        )
    # A was hanging the whole time B was measured: its first attempt outlived B's deliveries.
    assert first_a.error.startswith("timeout")
    assert first_a.finished_at > b_done
    # B kept its latency: close to what it was alone, far below A's timeout.
    assert max(beside_a) <= max(alone) + 1.0
    assert max(beside_a) < TIMEOUT_SECONDS / 2
    # A never had more than its one send in flight; its other sends waited in
    # the queue (not as attempts) instead of holding worker processes.
    assert _most_at_once(a_attempts) == 1
    assert any(count == 0 and "concurrency limit" in error for count, error, _ in a_states)
    assert Batch.Status.DELIVERED not in {status for *_, status in a_states}
    assert b_server.most_in_flight <= feed_b.max_concurrency
