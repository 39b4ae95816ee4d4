"""batch_build: a window's in-scope exposures, filtered per partner, into a gzip NDJSON body."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.delivery.models import Batch
from gateway.delivery.services import batch_build
from gateway.privacy.filter import Reason
from partners.models import CampaignAssignment, Feed, Partner
from tests.delivery.builders import WINDOW_START, batch_body, make_batch, make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed, make_partner

pytestmark = pytest.mark.django_db

IN_WINDOW = WINDOW_START + timedelta(seconds=30)


def body_records(batch: Batch) -> list[dict]:
    return [json.loads(line) for line in batch_body(batch).splitlines()]


def fresh(batch: Batch) -> Batch:
    return Batch.objects.get(pk=batch.pk)


def test_it_delivers_the_window_exposures_of_the_partner_campaigns(
    push_feed: Feed, queued: QueuedTasks
):
    inside = [make_exposure(received_at=IN_WINDOW, campaign_id=c) for c in ("cmp-1", "cmp-2")]
    make_exposure(received_at=IN_WINDOW, campaign_id="cmp-not-assigned")
    batch = make_batch(feed=push_feed)

    batch_build(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.READY
    assert batch.candidate_count == 2
    assert batch.delivered_count == 2
    assert sorted(r["event_id"] for r in body_records(batch)) == sorted(e.event_id for e in inside)


def test_the_window_includes_its_start_and_excludes_its_end(push_feed: Feed, queued: QueuedTasks):
    at_start = make_exposure(received_at=WINDOW_START)
    make_exposure(received_at=WINDOW_START - timedelta(microseconds=1))
    make_exposure(received_at=WINDOW_START + timedelta(seconds=60))
    batch = make_batch(feed=push_feed)

    batch_build(batch_id=batch.pk)

    assert [r["event_id"] for r in body_records(fresh(batch))] == [at_start.event_id]


def test_exposures_outside_the_campaign_assignment_dates_are_not_candidates(queued: QueuedTasks):
    partner = make_partner(campaigns=())
    CampaignAssignment.objects.create(
        partner=partner,
        campaign_id="cmp-1",
        starts_on=date(2026, 11, 1),
        ends_on=date(2026, 11, 23),
    )
    feed = make_feed(partner=partner)
    make_exposure(received_at=IN_WINDOW, occurred_at=datetime(2026, 11, 24, 0, 5, tzinfo=UTC))
    batch = make_batch(feed=feed)

    batch_build(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.candidate_count == 0
    assert batch.status == Batch.Status.EMPTY


def test_it_counts_dropped_exposures_by_reason(push_feed: Feed, queued: QueuedTasks):
    make_exposure(received_at=IN_WINDOW)
    # Opt-outs, GPC and COPPA remove identifiers but do not drop the event.
    for consent in (
        {"gdpr": 1},
        {"gdpr": 1},
        {"gdpr": 0, "us_privacy": "1YY"},
        {"gdpr": 0, "us_privacy": "1YYN"},
    ):
        make_exposure(received_at=IN_WINDOW, consent=consent)
    batch = make_batch(feed=push_feed)

    batch_build(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.candidate_count == 5
    assert batch.delivered_count == 2
    assert batch.dropped_by_reason == {
        Reason.TCF_CONSENT_MISSING: 2,
        Reason.MALFORMED_CONSENT: 1,
    }


def test_it_counts_events_sent_without_fields_by_activity_and_reason(
    partner: Partner, queued: QueuedTasks
):
    feed = make_feed(partner=partner, field_allowlist=["event_id", "user_id", "device"])
    make_exposure(received_at=IN_WINDOW)
    make_exposure(received_at=IN_WINDOW, consent={"gdpr": 0, "us_privacy": "1YYN"})
    batch = make_batch(feed=feed)

    batch_build(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.delivered_count == 2
    assert batch.transformed_by_reason == {
        "transmit_device_ids_denied:us_privacy_opt_out": 1,
        "transmit_precise_geo_denied:us_privacy_opt_out": 1,
        "transmit_user_ids_denied:us_privacy_opt_out": 1,
    }
    records = [json.loads(line) for line in batch_body(batch).splitlines()]
    assert ["user_id" in record for record in records] == [True, False]


def test_only_the_feed_allowlist_reaches_the_body(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, field_allowlist=["event_id", "campaign_id"])
    make_exposure(received_at=IN_WINDOW)
    batch = make_batch(feed=feed)

    batch_build(batch_id=batch.pk)

    [record] = body_records(fresh(batch))
    assert set(record) == {"event_id", "campaign_id"}


def test_the_body_is_gzip_ndjson_whose_sha256_and_size_are_stored(
    push_feed: Feed, queued: QueuedTasks
):
    for n in range(3):
        make_exposure(received_at=IN_WINDOW + timedelta(seconds=n))
    batch = make_batch(feed=push_feed)

    batch_build(batch_id=batch.pk)

    batch = fresh(batch)
    plain = batch_body(batch)
    lines = plain.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    for line in lines[:-1]:
        # Compact, sorted keys: the exact bytes json.dumps gives for that order.
        record = json.loads(line)
        assert line == json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
    assert batch.body_sha256 == hashlib.sha256(plain).hexdigest()
    assert batch.body_bytes == len(plain)
    assert batch.built_at is not None


def test_records_come_in_arrival_order(push_feed: Feed, queued: QueuedTasks):
    late = make_exposure(received_at=IN_WINDOW + timedelta(seconds=5))
    early = make_exposure(received_at=IN_WINDOW)
    batch = make_batch(feed=push_feed)

    batch_build(batch_id=batch.pk)

    assert [r["event_id"] for r in body_records(fresh(batch))] == [early.event_id, late.event_id]


# A batch spanning the 23rd and 24th (UTC), for exposures on either day.
TWO_DAYS = {
    "window_start": datetime(2026, 11, 23, tzinfo=UTC),
    "window_end": datetime(2026, 11, 25, tzinfo=UTC),
}


def test_delivered_counts_are_keyed_by_campaign_day_in_the_partner_time_zone_and_event_type(
    queued: QueuedTasks,
):
    partner = make_partner(campaigns=("cmp-1", "cmp-2"), reporting_time_zone="America/New_York")
    feed = make_feed(partner=partner)
    # 03:00 UTC on the 24th is still the evening of the 23rd in New York.
    make_exposure(received_at=IN_WINDOW, occurred_at=datetime(2026, 11, 24, 3, tzinfo=UTC))
    make_exposure(received_at=IN_WINDOW, occurred_at=datetime(2026, 11, 24, 8, tzinfo=UTC))
    make_exposure(
        received_at=IN_WINDOW,
        occurred_at=datetime(2026, 11, 24, 8, tzinfo=UTC),
        campaign_id="cmp-2",
    )
    make_exposure(  # dropped, so not counted as delivered
        received_at=IN_WINDOW,
        occurred_at=datetime(2026, 11, 24, 8, tzinfo=UTC),
        consent={"gdpr": 1},
    )
    batch = make_batch(feed=feed, **TWO_DAYS)

    batch_build(batch_id=batch.pk)

    assert fresh(batch).delivered_by_campaign_day_event == {
        "cmp-1|2026-11-23|impression": 1,
        "cmp-1|2026-11-24|impression": 1,
        "cmp-2|2026-11-24|impression": 1,
    }


def test_each_event_type_is_counted_under_its_own_key(push_feed: Feed, queued: QueuedTasks):
    occurred_at = datetime(2026, 11, 24, 8, tzinfo=UTC)
    for event_type in ("impression", "impression", "first_quartile", "complete", "click"):
        make_exposure(received_at=IN_WINDOW, occurred_at=occurred_at, event_type=event_type)
    batch = make_batch(feed=push_feed, **TWO_DAYS)

    batch_build(batch_id=batch.pk)

    assert fresh(batch).delivered_by_campaign_day_event == {
        "cmp-1|2026-11-24|click": 1,
        "cmp-1|2026-11-24|complete": 1,
        "cmp-1|2026-11-24|first_quartile": 1,
        "cmp-1|2026-11-24|impression": 2,
    }


def test_campaign_day_counts_do_not_depend_on_the_allowlist(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, field_allowlist=["event_id"])
    make_exposure(received_at=IN_WINDOW, occurred_at=datetime(2026, 11, 24, 8, tzinfo=UTC))
    batch = make_batch(feed=feed, **TWO_DAYS)

    batch_build(batch_id=batch.pk)

    assert fresh(batch).delivered_by_campaign_day_event == {"cmp-1|2026-11-24|impression": 1}


def test_a_window_with_nothing_to_deliver_ends_empty_without_a_body(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    make_exposure(received_at=IN_WINDOW, consent={"gdpr": 1})
    batch = make_batch(feed=push_feed)

    with django_capture_on_commit_callbacks(execute=True):
        batch_build(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.EMPTY
    assert batch.candidate_count == 1
    assert batch.delivered_count == 0
    assert batch.body_path == ""
    assert batch.body_sha256 == ""
    assert queued.calls == []


def test_a_ready_push_batch_is_queued_for_sending_after_commit(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    make_exposure(received_at=IN_WINDOW)
    batch = make_batch(feed=push_feed)

    with django_capture_on_commit_callbacks(execute=True):
        batch_build(batch_id=batch.pk)

    assert queued.ids("delivery.send_batch") == [str(batch.pk)]
    assert queued.options("delivery.send_batch")[0]["queue"] == "delivery"


def test_a_pull_feed_stops_at_ready(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = make_feed(partner=partner, mode=Feed.Mode.PULL)
    make_exposure(received_at=IN_WINDOW)
    batch = make_batch(feed=feed)

    with django_capture_on_commit_callbacks(execute=True):
        batch_build(batch_id=batch.pk)

    assert fresh(batch).status == Batch.Status.READY
    assert queued.calls == []


def test_building_twice_does_nothing_the_second_time(push_feed: Feed, queued: QueuedTasks):
    make_exposure(received_at=IN_WINDOW)
    batch = make_batch(feed=push_feed)
    assert batch_build(batch_id=batch.pk) is not None
    built = fresh(batch)

    assert batch_build(batch_id=batch.pk) is None
    assert fresh(batch).built_at == built.built_at


@pytest.mark.parametrize(
    "status", [Batch.Status.BUILDING, Batch.Status.READY, Batch.Status.DELIVERED]
)
def test_only_pending_batches_are_built(push_feed: Feed, queued: QueuedTasks, status: str):
    batch = make_batch(feed=push_feed, status=status)

    assert batch_build(batch_id=batch.pk) is None
    assert fresh(batch).status == status


def test_a_missing_batch_is_ignored(db: None):
    assert batch_build(batch_id="00000000-0000-0000-0000-000000000000") is None


def test_a_failing_build_hands_the_batch_back_as_pending_with_the_error(
    push_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    make_exposure(received_at=IN_WINDOW)
    batch = make_batch(feed=push_feed)

    def broken(event: object, policy: object) -> None:
        raise RuntimeError("filter exploded")

    # Where the row filter (event feeds) and the record loops (Parquet, aggregates) find it.
    monkeypatch.setattr("gateway.privacy.filter.filter_with_result", broken)
    monkeypatch.setattr("gateway.delivery.build.filter_with_result", broken)

    with pytest.raises(RuntimeError, match="filter exploded"):
        batch_build(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.PENDING
    assert batch.claimed_at is None
    assert "filter exploded" in batch.last_error
