"""batch_build for aggregate-only feeds: counts per cell, small cells suppressed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from gateway.delivery.build import AggregateConfigurationError
from gateway.delivery.models import Batch
from gateway.delivery.services import batch_build
from gateway.privacy.reasons import Reason
from partners.models import Feed, FeedShape, GlobalVendorList, Partner
from tests.delivery.builders import WINDOW_START, batch_body, make_batch, make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

IN_WINDOW = WINDOW_START + timedelta(seconds=30)
OCCURRED = IN_WINDOW
ALLOWLIST = ["event_id", "campaign_id", "event_type", "geo", "ip", "user_agent", "user_id"]


def aggregate_feed(partner: Partner, **fields) -> Feed:
    fields.setdefault("field_allowlist", ALLOWLIST)
    fields.setdefault("aggregate_dimensions", ["campaign_id", "event_type", "geo.country"])
    fields.setdefault("aggregate_min_users", 2)
    return make_feed(partner=partner, shape=FeedShape.AGGREGATE, **fields)


def exposures(users: int, *, events_each: int = 1, **overrides) -> None:
    for n in range(users):
        for _ in range(events_each):
            make_exposure(
                received_at=IN_WINDOW, occurred_at=OCCURRED, user_id=f"user-{n}", **overrides
            )


def body_text(batch: Batch) -> str:
    return batch_body(batch).decode()


def body_rows(batch: Batch) -> list[dict]:
    return [json.loads(line) for line in body_text(batch).splitlines()]


def build(feed: Feed) -> Batch:
    batch = make_batch(feed=feed)
    batch_build(batch_id=batch.pk)
    return Batch.objects.get(pk=batch.pk)


def test_an_aggregate_batch_holds_one_row_per_cell_in_a_fixed_order(
    partner: Partner, queued: QueuedTasks
):
    feed = aggregate_feed(partner)
    exposures(3, events_each=2, geo={"country": "US", "region": "CA"})
    exposures(2, geo={"country": "DE"})
    exposures(2, event_type="click", geo={"country": "DE"})

    batch = build(feed)

    assert batch.status == Batch.Status.READY
    assert body_rows(batch) == [
        {"campaign_id": "cmp-1", "event_type": "click", "geo.country": "DE", "events": 2,
         "users": 2},
        {"campaign_id": "cmp-1", "event_type": "impression", "geo.country": "DE", "events": 2,
         "users": 2},
        {"campaign_id": "cmp-1", "event_type": "impression", "geo.country": "US", "events": 6,
         "users": 3},
    ]  # fmt: skip
    assert batch.candidate_count == 10
    # What the partner receives is rows; reconciliation still gets events.
    assert batch.delivered_count == 3
    assert batch.delivered_by_campaign_day_event == {
        "cmp-1|2026-11-24|click": 2,
        "cmp-1|2026-11-24|impression": 8,
    }
    assert batch.suppressed_cells == 0


def test_cells_under_the_threshold_are_suppressed_and_counted(
    partner: Partner, queued: QueuedTasks
):
    feed = aggregate_feed(partner, aggregate_min_users=3)
    exposures(3, geo={"country": "US"})
    exposures(2, geo={"country": "DE"})
    exposures(1, geo={"country": "FR"})

    batch = build(feed)

    assert [row["geo.country"] for row in body_rows(batch)] == ["US"]
    assert batch.suppressed_cells == 2
    assert batch.delivered_count == 1
    # Events of suppressed cells were not delivered: reconciliation must not count them.
    assert batch.delivered_by_campaign_day_event == {"cmp-1|2026-11-24|impression": 3}


@pytest.mark.parametrize(("users", "rows"), [(49, 0), (50, 1)])
def test_the_default_threshold_is_50_distinct_users(
    partner: Partner, queued: QueuedTasks, users: int, rows: int
):
    feed = make_feed(
        partner=partner,
        shape=FeedShape.AGGREGATE,
        field_allowlist=ALLOWLIST,
        aggregate_dimensions=["campaign_id"],
    )
    exposures(users)

    batch = build(feed)

    assert batch.delivered_count == rows
    assert batch.suppressed_cells == 1 - rows
    assert batch.status == (Batch.Status.READY if rows else Batch.Status.EMPTY)


def test_a_window_whose_cells_are_all_suppressed_ends_empty(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    feed = aggregate_feed(partner, aggregate_min_users=10)
    exposures(4)

    with django_capture_on_commit_callbacks(execute=True):
        batch = build(feed)

    assert batch.status == Batch.Status.EMPTY
    assert batch.body_path == ""
    assert batch.suppressed_cells == 1
    assert batch.delivered_by_campaign_day_event == {}
    assert queued.calls == []


def test_dropped_exposures_are_counted_by_reason_and_not_aggregated(
    partner: Partner, queued: QueuedTasks
):
    feed = aggregate_feed(partner)
    exposures(2)
    exposures(3, consent={"gdpr": 1})  # GDPR without a TC string

    batch = build(feed)

    assert batch.candidate_count == 5
    assert batch.dropped_by_reason == {Reason.TCF_CONSENT_MISSING: 3}
    assert body_rows(batch)[0]["events"] == 2


def test_events_counted_with_fields_removed_are_tallied_by_activity_and_reason(
    partner: Partner, queued: QueuedTasks
):
    feed = aggregate_feed(partner)
    exposures(2)
    exposures(3, consent={"gdpr": 0, "us_privacy": "1YYN"})  # opted out of sale

    batch = build(feed)

    assert batch.transformed_by_reason == {
        "transmit_device_ids_denied:us_privacy_opt_out": 3,
        "transmit_precise_geo_denied:us_privacy_opt_out": 3,
        "transmit_user_ids_denied:us_privacy_opt_out": 3,
    }


def test_dimension_values_are_minimised_like_event_fields(partner: Partner, queued: QueuedTasks):
    feed = aggregate_feed(
        partner,
        aggregate_dimensions=["ip", "user_agent"],
        ipv4_prefix_bits=16,
        user_agent_level="family",
    )
    exposures(2)

    batch = build(feed)

    assert body_rows(batch) == [
        {"ip": "203.0.0.0", "user_agent": "Podcasts; iOS", "events": 2, "users": 2}
    ]


def test_no_identifier_reaches_the_body(partner: Partner, queued: QueuedTasks):
    feed = aggregate_feed(partner)
    exposures(3)

    text = body_text(build(feed))

    for raw in ("user-0", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "hh-9", "203.0.113"):
        assert raw not in text


def test_an_aggregate_feed_with_a_forbidden_dimension_is_not_built(
    partner: Partner, queued: QueuedTasks
):
    # Saved without Feed.clean (e.g. from a shell): the build checks again.
    feed = aggregate_feed(partner, aggregate_dimensions=["campaign_id", "user_id"])
    exposures(3)
    batch = make_batch(feed=feed)

    with pytest.raises(AggregateConfigurationError, match="user_id"):
        batch_build(batch_id=batch.pk)

    batch = Batch.objects.get(pk=batch.pk)
    assert batch.status == Batch.Status.PENDING
    assert "identifies a person" in batch.last_error
    assert batch.body_path == ""


def test_a_rebuild_gives_the_same_body(partner: Partner, queued: QueuedTasks):
    from gateway.delivery.services import batch_supersede

    feed = aggregate_feed(partner)
    exposures(3, geo={"country": "US"})
    exposures(2, geo={"country": "DE"})
    first = build(feed)

    successor = batch_supersede(batch_id=first.pk)
    assert successor is not None
    batch_build(batch_id=successor.pk)

    second = Batch.objects.get(pk=successor.pk)
    assert second.body_sha256 == first.body_sha256
    assert batch_body(second) == batch_body(first)


def test_the_batch_records_the_vendor_list_version(partner: Partner, queued: QueuedTasks):
    GlobalVendorList.objects.create(version=42, tcf_policy_version=4, document={})
    feed = aggregate_feed(partner)
    exposures(2)

    assert build(feed).gvl_version == 42


def test_without_a_vendor_list_the_version_stays_empty(partner: Partner, queued: QueuedTasks):
    assert build(aggregate_feed(partner)).gvl_version is None
