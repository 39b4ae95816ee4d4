"""Fixtures of the reconciliation tests: a partner in New York with a push and a pull feed."""

from __future__ import annotations

import pytest

from partners.models import Feed, Partner
from tests.factories import make_feed, make_partner


@pytest.fixture
def partner(db: None) -> Partner:
    # UTC-5 in November: a local day runs from 05:00Z to 05:00Z the next day.
    return make_partner(
        slug="nielsen",
        campaigns=("cmp-1", "cmp-2"),
        reporting_time_zone="America/New_York",
        reconciliation_tolerance_pct=5,
    )


@pytest.fixture
def push_feed(partner: Partner) -> Feed:
    return make_feed(partner=partner, name="push", mode=Feed.Mode.PUSH)


@pytest.fixture
def pull_feed(partner: Partner) -> Feed:
    return make_feed(partner=partner, name="pull", mode=Feed.Mode.PULL)
