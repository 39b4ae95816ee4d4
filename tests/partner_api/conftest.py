"""Fixtures of the partner API tests: two partners, each with a pull feed and an API key."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from partners.models import Feed, Partner
from tests.factories import make_api_key, make_feed, make_partner


@pytest.fixture
def partner(db: None) -> Partner:
    return make_partner(slug="nielsen", campaigns=("cmp-1", "cmp-2"))


@pytest.fixture
def other_partner(db: None) -> Partner:
    return make_partner(slug="comscore", campaigns=("cmp-1", "cmp-9"))


@pytest.fixture
def pull_feed(partner: Partner) -> Feed:
    return make_feed(partner=partner, name="exposures", mode=Feed.Mode.PULL, gzip=True)


@pytest.fixture
def partner_client(partner: Partner) -> APIClient:
    """An API client sending ``partner``'s API key."""
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(partner=partner)}")
    return api_client


@pytest.fixture
def other_client(other_partner: Partner) -> APIClient:
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(partner=other_partner)}")
    return api_client
