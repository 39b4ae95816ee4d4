"""GET /api/v1/partner/batches and /batches/<id>: what a partner can list, and how."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from gateway.delivery.models import Batch
from partners.models import Feed, Partner
from tests.factories import make_feed
from tests.partner_api.builders import WINDOW_START, make_ready_batch

pytestmark = pytest.mark.django_db

URL = "/api/v1/partner/batches"


def _ids(response: object) -> list[str]:
    return [item["id"] for item in response.json()["results"]]


def test_an_item_carries_what_a_partner_needs_to_download_and_check(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    batch = make_ready_batch(feed=pull_feed, sequence=7, records=[{"a": 1}, {"a": 2}])
    response = partner_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {
                "id": str(batch.id),
                "feed": "exposures",
                "sequence": 7,
                "kind": "window",
                "part": 1,
                "part_count": 1,
                "first_part": None,
                "supersedes": None,
                "window_start": "2026-11-24T09:00:00Z",
                "window_end": "2026-11-24T09:01:00Z",
                "event_count": 2,
                "body_sha256": batch.body_sha256,
                "body_bytes": batch.body_bytes,
                "content_type": "application/x-ndjson",
                "content_encoding": "gzip",
                "download_url": f"http://testserver{URL}/{batch.id}/download",
                "body_expired_at": None,
            }
        ],
        "next_cursor": None,
        "next": None,
    }


def test_every_part_of_a_claim_in_parts_names_part_1(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    first = make_ready_batch(feed=pull_feed, sequence=3, part=1, part_count=2)
    second = make_ready_batch(feed=pull_feed, sequence=4, part=2, part_count=2, first_part=first)
    response = partner_client.get(URL)
    assert response.status_code == 200
    parts = {item["id"]: item for item in response.json()["results"]}
    assert [
        (parts[str(batch.pk)]["part"], parts[str(batch.pk)]["first_part"])
        for batch in (first, second)
    ] == [(1, str(first.pk)), (2, str(first.pk))]


def test_batches_are_listed_newest_window_first(partner_client: APIClient, pull_feed: Feed) -> None:
    batches = [
        make_ready_batch(
            feed=pull_feed, sequence=n, window_start=WINDOW_START + timedelta(minutes=n)
        )
        for n in (1, 3, 2)
    ]
    by_sequence = {b.sequence: str(b.id) for b in batches}
    assert _ids(partner_client.get(URL)) == [by_sequence[3], by_sequence[2], by_sequence[1]]


def test_a_plain_feed_announces_identity_encoding(
    partner: Partner, partner_client: APIClient
) -> None:
    feed = make_feed(partner=partner, name="plain", mode=Feed.Mode.PULL, gzip=False)
    make_ready_batch(feed=feed)
    assert partner_client.get(URL).json()["results"][0]["content_encoding"] == "identity"


@pytest.mark.parametrize(
    "status", [Batch.Status.PENDING, Batch.Status.BUILDING, Batch.Status.EMPTY, Batch.Status.FAILED]
)
def test_batches_that_are_not_ready_are_not_listed(
    partner_client: APIClient, pull_feed: Feed, status: Batch.Status
) -> None:
    make_ready_batch(feed=pull_feed, status=status)
    assert _ids(partner_client.get(URL)) == []


def test_a_ready_batch_without_a_body_is_not_listed(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    make_ready_batch(feed=pull_feed, body_path="")
    assert _ids(partner_client.get(URL)) == []


def test_push_feed_batches_are_not_listed(partner: Partner, partner_client: APIClient) -> None:
    push_feed = make_feed(partner=partner, name="push", mode=Feed.Mode.PUSH)
    make_ready_batch(feed=push_feed, status=Batch.Status.DELIVERED)
    make_ready_batch(feed=push_feed, sequence=2, window_start=WINDOW_START + timedelta(hours=1))
    assert _ids(partner_client.get(URL)) == []


def test_the_feed_parameter_keeps_one_feed(
    partner: Partner, partner_client: APIClient, pull_feed: Feed
) -> None:
    other_feed = make_feed(partner=partner, name="clicks", mode=Feed.Mode.PULL)
    make_ready_batch(feed=pull_feed)
    wanted = make_ready_batch(feed=other_feed)
    assert _ids(partner_client.get(URL, {"feed": "clicks"})) == [str(wanted.id)]


def test_an_unknown_feed_name_is_a_400_naming_the_feed_parameter(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    response = partner_client.get(URL, {"feed": "nope"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_parameter"
    assert body["errors"] == [
        {"field": "feed", "code": "unknown_feed", "detail": "You have no pull feed named 'nope'."}
    ]


def test_since_keeps_windows_starting_at_or_after_it(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    make_ready_batch(feed=pull_feed, sequence=1, window_start=WINDOW_START)
    at = make_ready_batch(
        feed=pull_feed, sequence=2, window_start=WINDOW_START + timedelta(hours=1)
    )
    # 11:00+01:00 is 10:00Z: the second window starts exactly then.
    response = partner_client.get(URL, {"since": "2026-11-24T11:00:00+01:00"})
    assert _ids(response) == [str(at.id)]


def test_following_next_walks_every_batch_once(partner_client: APIClient, pull_feed: Feed) -> None:
    batches = [
        make_ready_batch(
            feed=pull_feed, sequence=n, window_start=WINDOW_START + timedelta(minutes=n)
        )
        for n in range(1, 6)
    ]
    seen: list[str] = []
    url: str | None = f"{URL}?limit=2"
    pages = 0
    while url:
        page = partner_client.get(url).json()
        seen.extend(item["id"] for item in page["results"])
        url = page["next"]
        pages += 1
    assert pages == 3
    assert seen == [str(b.id) for b in reversed(batches)]


def test_the_next_link_keeps_the_other_parameters(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    for n in (1, 2):
        make_ready_batch(
            feed=pull_feed, sequence=n, window_start=WINDOW_START + timedelta(minutes=n)
        )
    page = partner_client.get(URL, {"limit": "1", "feed": "exposures"}).json()
    assert "feed=exposures" in page["next"]
    assert "limit=1" in page["next"]
    assert page["next_cursor"] in page["next"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"since": "last week"}, "since"),
        ({"cursor": "garbage"}, "cursor"),
        ({"page": "2"}, "page"),
    ],
)
def test_bad_query_parameters_get_a_400_problem_naming_the_field(
    partner_client: APIClient, query: dict[str, str], field: str
) -> None:
    response = partner_client.get(URL, query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert [error["field"] for error in body["errors"]] == [field]
    assert field in body["detail"]


def test_the_detail_endpoint_returns_the_same_item(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    batch = make_ready_batch(feed=pull_feed)
    listed = partner_client.get(URL).json()["results"][0]
    response = partner_client.get(f"{URL}/{batch.id}")
    assert response.status_code == 200
    assert response.json() == listed


@pytest.mark.parametrize("batch_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_batch_id_is_a_404_problem(partner_client: APIClient, batch_id: str) -> None:
    response = partner_client.get(f"{URL}/{batch_id}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "batch_not_found"


def test_a_rebuilt_batch_names_the_batch_it_replaces(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    from gateway.delivery.services import batch_supersede

    old = make_ready_batch(feed=pull_feed, sequence=1)
    new = batch_supersede(batch_id=old.pk)
    assert new is not None
    Batch.objects.filter(pk=new.pk).update(
        status=Batch.Status.READY, body_path=old.body_path, body_sha256=old.body_sha256
    )

    items = partner_client.get(URL).json()["results"]

    assert [(item["id"], item["supersedes"]) for item in items] == [(str(new.pk), str(old.pk))]
