"""A partner never sees, downloads or learns of another partner's batches."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from gateway.delivery.models import Batch
from partners.models import Feed, Partner
from tests.factories import make_feed
from tests.partner_api.builders import make_ready_batch

pytestmark = pytest.mark.django_db

URL = "/api/v1/partner/batches"


@pytest.fixture
def theirs(other_partner: Partner) -> Batch:
    feed = make_feed(partner=other_partner, name="exposures", mode=Feed.Mode.PULL)
    return make_ready_batch(feed=feed)


@pytest.fixture
def ours(pull_feed: Feed) -> Batch:
    return make_ready_batch(feed=pull_feed)


def test_each_partner_lists_only_its_own_batches(
    partner_client: APIClient, other_client: APIClient, ours: Batch, theirs: Batch
) -> None:
    assert [i["id"] for i in partner_client.get(URL).json()["results"]] == [str(ours.id)]
    assert [i["id"] for i in other_client.get(URL).json()["results"]] == [str(theirs.id)]


def test_another_partners_feed_name_does_not_leak_its_batches(
    partner_client: APIClient, other_partner: Partner, theirs: Batch
) -> None:
    make_feed(partner=other_partner, name="secret-feed", mode=Feed.Mode.PULL)
    assert partner_client.get(URL, {"feed": "secret-feed"}).status_code == 400


def test_another_partners_batch_is_404_not_403(
    partner_client: APIClient, ours: Batch, theirs: Batch
) -> None:
    detail = partner_client.get(f"{URL}/{theirs.id}")
    download = partner_client.get(f"{URL}/{theirs.id}/download")
    assert (detail.status_code, download.status_code) == (404, 404)
    # Same answer as for an id that does not exist at all.
    missing = partner_client.get(f"{URL}/00000000-0000-0000-0000-000000000000")
    assert detail.json() == missing.json()


def test_a_refused_download_does_not_mark_the_other_partners_batch(
    partner_client: APIClient, theirs: Batch
) -> None:
    partner_client.get(f"{URL}/{theirs.id}/download")
    theirs.refresh_from_db()
    assert theirs.first_downloaded_at is None


def test_a_push_batch_of_ones_own_cannot_be_fetched_through_the_pull_api(
    partner: Partner, partner_client: APIClient
) -> None:
    push_batch = make_ready_batch(feed=make_feed(partner=partner, mode=Feed.Mode.PUSH))
    assert partner_client.get(f"{URL}/{push_batch.id}").status_code == 404
    assert partner_client.get(f"{URL}/{push_batch.id}/download").status_code == 404
