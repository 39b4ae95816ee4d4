"""What the seeded demo delivers: the history in window batches, live traffic by stream.

These run the real ingest, dispatch, stream flush, build and send services
against the seeded configuration, with the task queue replaced by a list, and
the streaming partner's simulator listening on a real port.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Max
from django.utils import timezone

from gateway.delivery import queueing, streaming
from gateway.delivery.claims import claimed_exposures, commit_horizon
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.services import batch_send, windows_dispatch
from gateway.delivery.streaming import stream_flush
from gateway.delivery.windows import window_floor
from gateway.demo.catalog import DV_DEMO, IAS_DEMO, NIELSEN_DEMO, DemoPartner
from gateway.demo.seed import DemoSecrets, demo_seed
from gateway.demo.synthetic import ExposureGenerator
from gateway.ingest.models import Exposure
from gateway.ingest.services import exposures_ingest
from gateway.simulator.bodies import parse_ndjson
from gateway.simulator.server import PartnerSimulator
from partners.models import Feed

# Commits for real: claims are made of commit sequences below the commit horizon.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clean_shared_store"),
]

USER_IDS = ("user_id", "household_id")


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Flush, build and send requests, instead of task messages to a broker."""
    requests: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        streaming,
        "_enqueue_flush",
        lambda feed_id, *, countdown: requests.append(("flush", feed_id)),
    )
    monkeypatch.setattr(
        queueing, "enqueue_build", lambda batch_id: requests.append(("build", batch_id))
    )
    monkeypatch.setattr(
        queueing, "enqueue_send", lambda batch_id, countdown=0: requests.append(("send", batch_id))
    )
    return requests


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_the_horizon() -> None:
    """Until every exposure written so far is below the commit horizon.

    Another transaction open anywhere on the PostgreSQL server holds the
    horizon back for a while; claims wait for it, so the test does too.
    """
    newest = Exposure.objects.aggregate(newest=Max("commit_seq"))["newest"] or 0
    deadline = time.monotonic() + 60
    while commit_horizon() <= newest:
        assert time.monotonic() < deadline, "the commit horizon did not pass our exposures"
        time.sleep(0.2)


def _ingest(records: list[dict[str, Any]]) -> None:
    result = exposures_ingest(records=records, now=timezone.now())
    assert result.rejected == 0


def _event_ids_for(spec: DemoPartner, records: list[dict[str, Any]], *, since: datetime) -> set:
    return {
        r["event_id"]
        for r in records
        if r["campaign_id"] in spec.campaign_ids
        and datetime.fromisoformat(r["occurred_at"]) >= since
    }


def test_the_stream_partners_simulator_is_pushed_its_live_events(
    tmp_path: Path, queued: list[tuple[str, Any]]
) -> None:
    port = _free_port()
    demo: DemoSecrets = demo_seed(var_dir=tmp_path, simulator_ports={DV_DEMO.slug: port})
    feed = Feed.objects.get(partner__slug=DV_DEMO.slug)
    generator = ExposureGenerator(seed=11, now=timezone.now(), listeners=300)
    history = generator.exposures(400)
    live = generator.live(300, now=timezone.now())

    with PartnerSimulator(
        data_dir=tmp_path / "dv",
        secret=demo.partners[DV_DEMO.slug].signing_secret,
        time_zone=DV_DEMO.reporting_time_zone,
        port=port,
    ) as simulator:
        _ingest(history + live)
        assert ("flush", feed.pk) in queued
        _wait_for_the_horizon()

        batch = stream_flush(feed_id=feed.pk)

        assert batch is not None and batch.kind == Batch.Kind.STREAM
        claimed = set(claimed_exposures(batch).values_list("event_id", flat=True))
        # The live events of its campaigns, none of the history before deliver_from.
        assert claimed == _event_ids_for(DV_DEMO, history + live, since=feed.deliver_from)
        assert _event_ids_for(DV_DEMO, live, since=feed.deliver_from) <= claimed
        assert [str(b) for kind, b in queued if kind == "send"] == [str(batch.pk)]

        attempt = batch_send(batch_id=batch.pk)

        assert attempt is not None and attempt.outcome == DeliveryAttempt.Outcome.SUCCEEDED
        batch.refresh_from_db()
        assert batch.status == Batch.Status.DELIVERED and batch.delivered_count > 0
        (received,) = simulator.stats().requests
        assert (received.outcome, received.webhook_id) == ("accepted", str(batch.pk))
        assert received.event_count == batch.delivered_count
        (stored,) = simulator.store.batches()
        records = parse_ndjson(stored.path.read_text())
    assert {r["campaign_id"] for r in records} <= set(DV_DEMO.campaign_ids)
    assert not any(field in r for r in records for field in USER_IDS)


def test_one_dispatch_delivers_the_history_in_window_batches_and_nothing_late(
    tmp_path: Path, queued: list[tuple[str, Any]]
) -> None:
    demo_seed(var_dir=tmp_path)
    history = ExposureGenerator(seed=12, now=timezone.now(), listeners=300).exposures(600)
    _ingest(history)
    _wait_for_the_horizon()
    now = timezone.now()

    windows_dispatch(now=now)

    for spec in (NIELSEN_DEMO, IAS_DEMO):
        feed = Feed.objects.get(partner__slug=spec.slug)
        batches = list(Batch.objects.filter(feed=feed).order_by("sequence"))
        assert {b.kind for b in batches} == {Batch.Kind.WINDOW}
        assert 72 <= len(batches) <= 74
        open_window = window_floor(now - timedelta(seconds=feed.grace_seconds), length_seconds=3600)
        assert batches[0].window_start == feed.deliver_from
        assert batches[-1].window_end == open_window
        claimed = set()
        for batch in batches:
            claimed |= set(claimed_exposures(batch).values_list("event_id", flat=True))
        expected = _event_ids_for(spec, history, since=feed.deliver_from) - _event_ids_for(
            spec, history, since=open_window
        )
        assert claimed == expected
    # The streaming feed has no windows to cut.
    assert not Batch.objects.filter(feed__partner__slug=DV_DEMO.slug, kind=Batch.Kind.WINDOW)


def test_live_events_of_a_window_already_cut_go_out_late_when_the_next_window_closes(
    tmp_path: Path, queued: list[tuple[str, Any]]
) -> None:
    demo_seed(var_dir=tmp_path)
    windows_dispatch(now=timezone.now())
    feed = Feed.objects.get(partner__slug=NIELSEN_DEMO.slug)
    frontier = feed.cursor.frontier
    # Live traffic a minute and a half after the hour: some of it occurred
    # before the hour, in the window cut a moment ago.
    live = ExposureGenerator(seed=13, now=timezone.now(), listeners=300).live(
        400, now=frontier + timedelta(seconds=90)
    )
    _ingest(live)
    _wait_for_the_horizon()
    before_cut = Batch.objects.filter(feed=feed).count()

    windows_dispatch(now=frontier + timedelta(hours=1, seconds=feed.grace_seconds))

    late, window = Batch.objects.filter(feed=feed).order_by("sequence")[before_cut:]
    assert (late.kind, window.kind) == (Batch.Kind.LATE, Batch.Kind.WINDOW)
    assert window.window_start == frontier
    late_ids = set(claimed_exposures(late).values_list("event_id", flat=True))
    window_ids = set(claimed_exposures(window).values_list("event_id", flat=True))
    occurred = _event_ids_for(NIELSEN_DEMO, live, since=feed.deliver_from)
    after_the_hour = _event_ids_for(NIELSEN_DEMO, live, since=frontier)
    assert late_ids == occurred - after_the_hour and late_ids
    assert window_ids == after_the_hour
