"""Fault injection on real components: a real Celery worker and beat, Redis, PostgreSQL,
and the partner simulator on 127.0.0.1 answering with planned faults.

For every fault the same three things are checked: nothing is lost (the partner
ends up counting every eligible exposure), nothing is duplicated that the
partner cannot deduplicate (every request of a batch carries its batch id as
``webhook-id``, and the simulator stores a batch once), and every attempt is
recorded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.utils import timezone

from gateway.delivery.models import Batch, DeliveryAttempt, FeedNotice
from gateway.ingest.models import Exposure
from gateway.ingest.services import exposures_ingest
from gateway.simulator.server import PartnerSimulator
from partners.models import Feed, Partner
from partners.services import signing_secret_current
from tests.factories import exposure_payload, make_feed, make_partner
from tests.integration.conftest import CeleryProcesses, wait_until, worker_database_url

pytestmark = pytest.mark.integration

Outcome = DeliveryAttempt.Outcome
# Quick retries, no breaker or pause in the way unless a test wants them, and a
# sweeper that gives up on lost messages and dead workers within seconds.
FAST = {
    "DELIVERY_TIMEOUT_SECONDS": "2",
    "DELIVERY_SLOWDOWN_PAUSE_SECONDS": "0",
    "DELIVERY_CIRCUIT_MIN_REQUESTS": "1000",
    "DELIVERY_LOST_MESSAGE_AFTER_SECONDS": "2",
    "DELIVERY_DEAD_CLAIM_MARGIN_SECONDS": "1",
    "CELERY_TASK_TIME_LIMIT": "15",
}


def _partner(tmp_path: Path, **simulator_options: Any) -> tuple[Partner, PartnerSimulator]:
    partner = make_partner(campaigns=("cmp-1",))
    simulator_options.setdefault("secret", signing_secret_current(partner_id=partner.pk))
    return partner, PartnerSimulator(data_dir=tmp_path / "partner", **simulator_options)


def _feed(partner: Partner, url: str, **fields: Any) -> Feed:
    fields.setdefault("retry_schedule", [1] * 10)
    return make_feed(
        partner=partner,
        endpoint_url=url,
        batch_window_seconds=2,
        grace_seconds=0,
        retry_jitter_pct=0,
        deliver_from=timezone.now() - timedelta(seconds=4),
        **fields,
    )


def _ingest(count: int) -> None:
    """Store ``count`` exposures that just occurred (committed: the worker sees them)."""
    occurred_at = (timezone.now() - timedelta(seconds=1)).isoformat()
    result = exposures_ingest(
        records=[exposure_payload(occurred_at=occurred_at) for _ in range(count)]
    )
    assert result.accepted == count


def _delivered(feed: Feed) -> int:
    return sum(
        Batch.objects.filter(feed=feed, status=Batch.Status.DELIVERED).values_list(
            "delivered_count", flat=True
        )
    )


def _assert_each_batch_stored_once(simulator: PartnerSimulator, feed: Feed) -> None:
    """Every request named a batch of ours, and the partner stored each batch once."""
    stats = simulator.stats()
    ours = {str(pk) for pk in Batch.objects.filter(feed=feed).values_list("pk", flat=True)}
    assert {r.webhook_id for r in stats.requests} <= ours
    assert len(stats.batch_ids) == len(set(stats.batch_ids))


@contextmanager
def _exposures_locked() -> Iterator[None]:
    """The exposures table locked by another connection: whoever reads it waits until the end.

    Dispatching windows does not read it (the commit horizon is a snapshot
    function), so batches are cut and claimed meanwhile.
    """
    with psycopg.connect(worker_database_url()) as holder:
        holder.execute(f"LOCK TABLE {Exposure._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            holder.rollback()


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL the whole process group: the worker and its pool children die mid-task."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_a_storm_of_partner_faults_ends_in_one_delivery_with_every_attempt_recorded(
    start_celery, tmp_path: Path
) -> None:
    plan = ["503", "502", "429:3", "reset", "stored-reset", "sleep:4", "500"]
    partner, simulator = _partner(tmp_path, respond=plan)
    with simulator:
        feed = _feed(partner, simulator.url + "/exposures")
        _ingest(5)
        start_celery(beat=True, extra_env=FAST)
        wait_until(lambda: _delivered(feed) == 5, timeout=120, what="delivery after the storm")
        wait_until(lambda: simulator.stats().event_total == 5, timeout=10, what="partner count")

        batch = Batch.objects.get(feed=feed, status=Batch.Status.DELIVERED)
        attempts = list(batch.attempts.order_by("number"))
        assert [a.outcome for a in attempts] == [Outcome.TRANSIENT_FAILURE] * 7 + [
            Outcome.SUCCEEDED
        ]
        assert [a.http_status for a in attempts] == [503, 502, 429, None, None, None, 500, 200]
        assert "timeout" in attempts[5].error
        # Retry-After: 3 beat the feed's one-second schedule.
        gap = attempts[3].started_at - attempts[2].finished_at
        assert gap >= timedelta(seconds=2.5)
        requests = [r for r in simulator.stats().requests if r.webhook_id == str(batch.pk)]
        assert len(requests) == 8
        # The batch arrived with the fifth request (stored, then the connection
        # reset); the later copies were recognised by their webhook-id. (The
        # slow request is recorded when it ends, after the one that followed it.)
        assert sorted(r.outcome for r in requests[4:]) == [
            "accepted_then_reset",
            "duplicate",
            "duplicate",
            "planned_failure",
        ]
        _assert_each_batch_stored_once(simulator, feed)


def test_410_gone_disables_the_feed_with_a_notice_and_sends_nothing_more(
    start_celery, tmp_path: Path
) -> None:
    partner, simulator = _partner(tmp_path, respond=["410"] * 5)
    with simulator:
        feed = _feed(partner, simulator.url + "/exposures")
        _ingest(3)
        start_celery(beat=True, extra_env=FAST)
        wait_until(
            lambda: not Feed.objects.get(pk=feed.pk).enabled, timeout=60, what="feed disabled"
        )
        feed.refresh_from_db()
        assert "410" in feed.disabled_reason
        assert FeedNotice.objects.filter(feed=feed, code="gone").exists()
        failed = Batch.objects.get(feed=feed, status=Batch.Status.FAILED)
        assert failed.attempts.get().http_status == 410
        time.sleep(3)  # beat keeps running: nothing more may go out
        assert len(simulator.stats().requests) == 1
        assert simulator.stats().event_total == 0


def test_wrong_signatures_are_refused_then_the_dead_batch_is_retried_with_the_same_id(
    start_celery, tmp_path: Path
) -> None:
    wrong = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    partner, impostor = _partner(tmp_path, secret=wrong)
    with impostor:
        port = impostor.port
        feed = _feed(partner, impostor.url + "/exposures")
        _ingest(4)
        start_celery(beat=True, extra_env=FAST)
        dead = wait_until(
            lambda: Batch.objects.filter(feed=feed, status=Batch.Status.FAILED).first(),
            timeout=60,
            what="the batch failing on a rejected signature",
        )
        attempt = dead.attempts.get()
        assert attempt.outcome == Outcome.PERMANENT_FAILURE
        assert attempt.http_status == 401
        assert impostor.stats().event_total == 0

    # The partner fixes its secret; on-call retries the dead batches in bulk.
    fixed_partner = PartnerSimulator(
        data_dir=tmp_path / "partner-fixed",
        secret=signing_secret_current(partner_id=partner.pk),
        port=port,
    )
    with fixed_partner as fixed:
        call_command("retry_dead_batches", "--feed", f"{partner.slug}/{feed.name}")
        wait_until(lambda: _delivered(feed) == 4, timeout=60, what="delivery after the retry")
        assert fixed.stats().batch_ids == [str(dead.pk)]
        assert fixed.stats().event_total == 4
        assert list(dead.attempts.order_by("number").values_list("outcome", flat=True)) == [
            Outcome.PERMANENT_FAILURE,
            Outcome.SUCCEEDED,
        ]


def test_a_worker_killed_mid_send_leaves_one_delivery_after_restart(
    start_celery, tmp_path: Path
) -> None:
    # The partner takes 6 s to answer the first request: long enough to kill
    # the worker while it waits, short of the 10 s timeout.
    partner, simulator = _partner(tmp_path, respond=["sleep:6"])
    env = {**FAST, "DELIVERY_TIMEOUT_SECONDS": "10"}
    with simulator:
        feed = _feed(partner, simulator.url + "/exposures")
        _ingest(6)
        first: CeleryProcesses = start_celery(beat=True, extra_env=env)
        wait_until(
            lambda: Batch.objects.filter(feed=feed, status=Batch.Status.SENDING).exists(),
            timeout=60,
            what="a send in flight",
        )
        _kill(first.worker)
        start_celery(extra_env=env)  # beat from before keeps running

        wait_until(lambda: _delivered(feed) == 6, timeout=120, what="delivery after restart")
        batch = Batch.objects.get(feed=feed, status=Batch.Status.DELIVERED)
        attempts = list(batch.attempts.order_by("number"))
        assert attempts[0].outcome == Outcome.TRANSIENT_FAILURE
        assert "worker lost" in attempts[0].error
        assert attempts[-1].outcome == Outcome.SUCCEEDED
        wait_until(lambda: simulator.stats().event_total == 6, timeout=10, what="partner count")
        _assert_each_batch_stored_once(simulator, feed)


def test_a_worker_killed_mid_build_leaves_one_batch_built_once_after_restart(
    start_celery, tmp_path: Path
) -> None:
    partner, simulator = _partner(tmp_path)
    with simulator:
        feed = _feed(partner, simulator.url + "/exposures")
        _ingest(8_000)
        # The build claims its batch, then waits for the exposures it reads:
        # it is killed in the middle however fast this machine builds.
        with _exposures_locked():
            first: CeleryProcesses = start_celery(beat=True, extra_env=FAST)
            wait_until(
                lambda: Batch.objects.filter(feed=feed, status=Batch.Status.BUILDING).exists(),
                timeout=60,
                interval=0.02,
                what="a build in progress",
            )
            _kill(first.worker)
        assert Batch.objects.filter(feed=feed, status=Batch.Status.BUILDING).exists()
        start_celery(extra_env=FAST)

        wait_until(lambda: _delivered(feed) == 8_000, timeout=180, what="delivery after restart")
        wait_until(lambda: simulator.stats().event_total == 8_000, timeout=10, what="partner count")
        _assert_each_batch_stored_once(simulator, feed)
        # The builds the kill interrupted are taken back and finish too.
        wait_until(
            lambda: not Batch.objects.filter(feed=feed, status=Batch.Status.BUILDING).exists(),
            timeout=60,
            what="no build left claimed by the dead worker",
        )


class _PrivateRedis:
    """A redis-server of this test's own on a free port, to kill and restart at will."""

    def __init__(self, tmp_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._dir = tmp_path
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._ping, timeout=10, what="redis-server up")

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait(timeout=10)

    def _ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False


@pytest.fixture
def private_redis(tmp_path: Path):
    server = _PrivateRedis(tmp_path)
    server.start()
    yield server
    if server._process is not None and server._process.poll() is None:
        server.kill()


def test_a_redis_restart_during_delivery_loses_nothing_and_duplicates_nothing(
    start_celery, tmp_path: Path, private_redis: _PrivateRedis
) -> None:
    # Slow answers keep sends in flight while Redis goes away with every
    # queued message (it keeps nothing on disk).
    partner, simulator = _partner(tmp_path, respond=["sleep:2"] * 3)
    env = {**FAST, "REDIS_URL": private_redis.url, "DELIVERY_TIMEOUT_SECONDS": "5"}
    with simulator:
        feed = _feed(partner, simulator.url + "/exposures")
        _ingest(5)
        processes: CeleryProcesses = start_celery(beat=True, extra_env=env)
        wait_until(
            lambda: Batch.objects.filter(feed=feed, status=Batch.Status.SENDING).exists(),
            timeout=60,
            what="a send in flight",
        )
        _ingest(7)  # more arrives while the broker is down
        private_redis.kill()
        time.sleep(3)
        private_redis.start()
        # kombu 5.7's Redis transport may crash the worker ("Unrecoverable
        # error") when it restores an unacknowledged message on a lost
        # connection; its supervisor (compose's restart policy) starts it again.
        time.sleep(2)
        if processes.worker.poll() is not None:
            start_celery(extra_env=env)

        wait_until(lambda: _delivered(feed) == 12, timeout=180, what="delivery after restart")
        wait_until(lambda: simulator.stats().event_total == 12, timeout=10, what="partner count")
        _assert_each_batch_stored_once(simulator, feed)
        assert not DeliveryAttempt.objects.filter(
            batch__feed=feed, outcome=Outcome.IN_PROGRESS
        ).exists()
