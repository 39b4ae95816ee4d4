"""Internal counts per campaign and local day: total, consent-eligible and delivered."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.delivery.models import Batch
from gateway.delivery.policies import policy_for
from gateway.reconciliation.models import Metric, PartnerReport
from gateway.reconciliation.selectors import (
    internal_delivered,
    internal_eligible,
    internal_totals,
    reported_values,
)
from partners.models import CampaignAssignment, Feed, Partner
from tests.factories import make_feed, make_partner
from tests.reconciliation.builders import make_batch, make_exposure

pytestmark = pytest.mark.django_db

NOV_23, NOV_24, NOV_25 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)
IMPRESSIONS = Metric.IMPRESSIONS
# Every event type of an ad play except the impression itself.
NOT_IMPRESSIONS = ("start", "first_quartile", "midpoint", "third_quartile", "complete", "click")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_exposures_are_bucketed_by_the_partners_local_day_across_utc_midnight(
    partner: Partner,
) -> None:
    # New York is UTC-5: 04:59Z on the 25th is 23:59 on the 24th; 05:00Z is the 25th.
    make_exposure(occurred_at=_at("2026-11-24T05:00:00+00:00"))  # 24th 00:00 local
    make_exposure(occurred_at=_at("2026-11-25T04:59:59+00:00"))  # 24th 23:59:59 local
    make_exposure(occurred_at=_at("2026-11-25T05:00:00+00:00"))  # 25th 00:00 local
    make_exposure(occurred_at=_at("2026-11-24T04:59:59+00:00"))  # 23rd 23:59:59 local
    make_exposure(occurred_at=_at("2026-11-24T12:00:00+00:00"), campaign_id="cmp-2")

    assert internal_totals(partner=partner, days=[NOV_23, NOV_24, NOV_25], metric=IMPRESSIONS) == {
        ("cmp-1", NOV_23): 1,
        ("cmp-1", NOV_24): 2,
        ("cmp-1", NOV_25): 1,
        ("cmp-2", NOV_24): 1,
    }


def test_only_the_days_asked_for_are_counted(partner: Partner) -> None:
    make_exposure(occurred_at=_at("2026-11-23T12:00:00+00:00"))
    make_exposure(occurred_at=_at("2026-11-24T12:00:00+00:00"))
    make_exposure(occurred_at=_at("2026-11-25T12:00:00+00:00"))
    # Non-contiguous days: the 24th lies inside the scanned range but was not asked.
    assert internal_totals(partner=partner, days=[NOV_23, NOV_25], metric=IMPRESSIONS) == {
        ("cmp-1", NOV_23): 1,
        ("cmp-1", NOV_25): 1,
    }


def test_only_the_partners_assigned_campaigns_and_days_count(partner: Partner) -> None:
    CampaignAssignment.objects.create(
        partner=partner, campaign_id="cmp-late", starts_on=NOV_24, ends_on=NOV_24
    )
    make_exposure(occurred_at=_at("2026-11-24T12:00:00+00:00"), campaign_id="cmp-other")
    make_exposure(occurred_at=_at("2026-11-23T12:00:00+00:00"), campaign_id="cmp-late")
    make_exposure(occurred_at=_at("2026-11-24T12:00:00+00:00"), campaign_id="cmp-late")
    assert internal_totals(partner=partner, days=[NOV_23, NOV_24], metric=IMPRESSIONS) == {
        ("cmp-late", NOV_24): 1
    }


def test_a_partner_without_assignments_counts_nothing(db: None) -> None:
    lonely = make_partner(campaigns=())
    make_exposure(occurred_at=_at("2026-11-24T12:00:00+00:00"))
    assert internal_totals(partner=lonely, days=[NOV_24], metric=IMPRESSIONS) == {}


def test_eligible_counts_exclude_exposures_that_fail_the_consent_rule(partner: Partner) -> None:
    noon = _at("2026-11-24T17:00:00+00:00")
    make_exposure(occurred_at=noon)
    make_exposure(occurred_at=noon)
    make_exposure(
        occurred_at=noon,
        consent={"gdpr": 1, "us_privacy": "1YNN", "gpc": True, "coppa": False},
    )
    make_exposure(
        occurred_at=noon,
        campaign_id="cmp-2",
        consent={"gdpr": 0, "us_privacy": "1YY", "gpc": False, "coppa": False},
    )
    days = [NOV_24]
    assert internal_totals(partner=partner, days=days, metric=IMPRESSIONS) == {
        ("cmp-1", NOV_24): 3,
        ("cmp-2", NOV_24): 1,
    }
    # The campaign-day whose only exposure is dropped has no eligible key at all: read as 0.
    assert internal_eligible(
        partner=partner, days=days, metric=IMPRESSIONS, policy=policy_for(partner=partner)
    ) == {("cmp-1", NOV_24): 2}


def test_eligible_counts_use_the_same_local_day_as_totals(partner: Partner) -> None:
    make_exposure(occurred_at=_at("2026-11-25T04:30:00+00:00"))  # 23:30 on the 24th locally
    result = internal_eligible(
        partner=partner, days=[NOV_24], metric=IMPRESSIONS, policy=policy_for(partner=partner)
    )
    assert result == {("cmp-1", NOV_24): 1}


def test_delivered_sums_only_batches_that_reached_the_partner(
    partner: Partner, push_feed: Feed, pull_feed: Feed
) -> None:
    window = _at("2026-11-24T15:00:00+00:00")
    key = "cmp-1|2026-11-24|impression"
    make_batch(feed=push_feed, window_start=window, delivered={key: 10})
    make_batch(
        feed=push_feed,
        window_start=window + timedelta(minutes=1),
        delivered={key: 100, "cmp-2|2026-11-24|impression": 4},
    )
    for n, status in enumerate(
        (Batch.Status.FAILED, Batch.Status.READY, Batch.Status.RETRY_SCHEDULED), start=2
    ):
        make_batch(
            feed=push_feed,
            window_start=window + timedelta(minutes=n),
            delivered={key: 1000},
            status=status,
        )
    make_batch(
        feed=pull_feed,
        window_start=window,
        delivered={key: 7},
        status=Batch.Status.READY,
        first_downloaded_at=window + timedelta(hours=1),
    )
    make_batch(
        feed=pull_feed,
        window_start=window + timedelta(minutes=1),
        delivered={key: 5000},
        status=Batch.Status.READY,
    )
    assert internal_delivered(partner=partner, days=[NOV_24], metric=IMPRESSIONS) == {
        ("cmp-1", NOV_24): 117,
        ("cmp-2", NOV_24): 4,
    }


def test_delivered_ignores_other_partners_and_other_days(partner: Partner, push_feed: Feed) -> None:
    window = _at("2026-11-24T15:00:00+00:00")
    other_feed = make_feed(partner=make_partner(slug="comscore"), name="push")
    make_batch(feed=other_feed, window_start=window, delivered={"cmp-1|2026-11-24|impression": 50})
    # A late exposure of the 23rd delivered in a window of the 24th counts for the 23rd.
    make_batch(
        feed=push_feed,
        window_start=window,
        delivered={
            "cmp-1|2026-11-23|impression": 3,
            "cmp-1|2026-11-24|impression": 2,
            "cmp-1|2026-11-20|impression": 9,
        },
    )
    assert internal_delivered(partner=partner, days=[NOV_23, NOV_24], metric=IMPRESSIONS) == {
        ("cmp-1", NOV_23): 3,
        ("cmp-1", NOV_24): 2,
    }


def test_delivered_keys_with_a_pipe_in_the_campaign_id_are_split_on_the_last_one(
    partner: Partner, push_feed: Feed
) -> None:
    make_batch(
        feed=push_feed,
        window_start=_at("2026-11-24T15:00:00+00:00"),
        delivered={"cmp|odd|2026-11-24|impression": 1, "malformed": 5},
    )
    assert internal_delivered(partner=partner, days=[NOV_24], metric=IMPRESSIONS) == {
        ("cmp|odd", NOV_24): 1
    }


def test_delivered_keys_without_an_event_type_count_for_no_metric(
    partner: Partner, push_feed: Feed
) -> None:
    # The "<campaign>|<day>" keys of batches built before counts were per event type.
    make_batch(
        feed=push_feed,
        window_start=_at("2026-11-24T15:00:00+00:00"),
        delivered={"cmp-1|2026-11-24": 7, "cmp|odd|2026-11-24": 3},
    )
    assert internal_delivered(partner=partner, days=[NOV_24], metric=IMPRESSIONS) == {}


def test_quartiles_completes_and_clicks_are_not_counted_as_impressions(
    partner: Partner, push_feed: Feed
) -> None:
    noon = _at("2026-11-24T17:00:00+00:00")
    make_exposure(occurred_at=noon)
    make_exposure(occurred_at=noon, consent={"gdpr": 1})
    for event_type in NOT_IMPRESSIONS:
        make_exposure(occurred_at=noon, event_type=event_type)
    make_exposure(occurred_at=noon, campaign_id="cmp-2", event_type="click")
    make_batch(
        feed=push_feed,
        window_start=noon,
        delivered={
            "cmp-1|2026-11-24|impression": 1,
            **{f"cmp-1|2026-11-24|{event_type}": 1 for event_type in NOT_IMPRESSIONS},
            "cmp-2|2026-11-24|click": 1,
        },
    )
    days = [NOV_24]

    assert internal_totals(partner=partner, days=days, metric=IMPRESSIONS) == {("cmp-1", NOV_24): 2}
    policy = policy_for(partner=partner)
    assert internal_eligible(partner=partner, days=days, metric=IMPRESSIONS, policy=policy) == {
        ("cmp-1", NOV_24): 1
    }
    assert internal_delivered(partner=partner, days=days, metric=IMPRESSIONS) == {
        ("cmp-1", NOV_24): 1
    }


def test_reported_values_are_the_partners_impressions(partner: Partner) -> None:
    PartnerReport.objects.create(
        partner=partner, campaign_id="cmp-1", date=NOV_24, metric="impressions", value=12
    )
    PartnerReport.objects.create(
        partner=make_partner(slug="comscore"),
        campaign_id="cmp-1",
        date=NOV_24,
        metric="impressions",
        value=99,
    )
    assert reported_values(partner=partner, days=[NOV_24, NOV_25], metric=IMPRESSIONS) == {
        ("cmp-1", NOV_24): 12
    }
