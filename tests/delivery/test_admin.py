"""The delivery admin: read-only pages that load fast, failed batches in plain sight, actions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from gateway.delivery.first_signature import FirstSignature
from gateway.delivery.models import Batch, DeliveryAttempt
from partners.models import Feed
from tests.delivery.builders import WINDOW_START, make_batch
from tests.delivery.conftest import QueuedTasks

pytestmark = pytest.mark.django_db

RECORDS = [{"event_id": "evt-1"}]
CHANGELIST = "admin:delivery_batch_changelist"


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("ops", "ops@example.com", "pw-ops-1")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def failed_batch(push_feed: Feed) -> Batch:
    batch = make_batch(
        feed=push_feed,
        status=Batch.Status.FAILED,
        records=RECORDS,
        attempt_count=1,
        last_error="attempt 1: HTTP 400",
        dropped_by_reason={"gpc": 2, "coppa": 1},
    )
    DeliveryAttempt.objects.create(
        batch=batch,
        number=1,
        started_at=WINDOW_START,
        outcome=DeliveryAttempt.Outcome.PERMANENT_FAILURE,
        http_status=400,
        webhook_timestamp=1,
    )
    return batch


def test_the_batch_list_shows_failed_batches_with_a_warning_badge(
    staff_client: Client, failed_batch: Batch
):
    response = staff_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    html = response.content.decode()
    assert "⚠ Failed" in html
    assert "#dc3545" in html


def test_the_batch_list_can_be_filtered_to_failed_batches(
    staff_client: Client, failed_batch: Batch, push_feed: Feed
):
    make_batch(feed=push_feed, sequence=2, window_start=failed_batch.window_end)

    response = staff_client.get(reverse(CHANGELIST), {"status__exact": "failed"})

    assert list(response.context["cl"].result_list) == [failed_batch]


def test_the_batch_list_can_be_filtered_to_batches_whose_body_expired(
    staff_client: Client, failed_batch: Batch, push_feed: Feed
):
    expired = make_batch(
        feed=push_feed,
        sequence=2,
        window_start=failed_batch.window_end,
        status=Batch.Status.DELIVERED,
        body_expired_at=WINDOW_START,
    )

    response = staff_client.get(reverse(CHANGELIST), {"body": "expired"})
    kept = staff_client.get(reverse(CHANGELIST), {"body": "kept"})

    assert list(response.context["cl"].result_list) == [expired]
    assert list(kept.context["cl"].result_list) == [failed_batch]


def test_the_batch_list_never_loads_bodies_and_does_not_query_per_row(
    staff_client: Client, failed_batch: Batch, push_feed: Feed
):
    for n in range(2, 6):
        make_batch(
            feed=push_feed,
            sequence=n,
            window_start=WINDOW_START.replace(minute=n),
            records=RECORDS,
        )

    with CaptureQueriesContext(connection) as few:
        staff_client.get(reverse(CHANGELIST))
    make_batch(feed=push_feed, sequence=9, window_start=WINDOW_START.replace(minute=9))
    with CaptureQueriesContext(connection) as more:
        staff_client.get(reverse(CHANGELIST))

    assert len(more) == len(few)
    batch_selects = [q["sql"] for q in more if 'FROM "delivery_batch"' in q["sql"]]
    assert batch_selects


def test_the_batch_page_shows_dropped_reasons_and_attempts_read_only(
    staff_client: Client, failed_batch: Batch
):
    url = reverse("admin:delivery_batch_change", args=[failed_batch.pk])

    response = staff_client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<li>gpc: 2</li>" in html
    assert "Permanent failure" in html
    assert 'name="_save"' not in html
    assert "no: every attempt signs when it starts" in html


def test_the_batch_page_says_when_and_with_which_keys_the_build_signed(
    staff_client: Client, failed_batch: Batch
):
    first = FirstSignature(
        timestamp=1_764_000_000, key_ids=("k-old", "k-new"), signatures=("v1,a", "v1,b"),
        stored_sha256="0" * 64,
    )  # fmt: skip
    Batch.objects.filter(pk=failed_batch.pk).update(first_signature=first.as_json())

    response = staff_client.get(reverse("admin:delivery_batch_change", args=[failed_batch.pk]))

    assert "at 2025-11-24 16:00:00 UTC, keys k-old, k-new" in response.content.decode()


def test_the_batch_page_says_which_part_of_its_claim_a_batch_is(
    staff_client: Client, failed_batch: Batch
):
    later = make_batch(
        feed=failed_batch.feed,
        sequence=2,
        status=Batch.Status.READY,
        records=RECORDS,
        part=2,
        part_count=2,
        first_part=failed_batch,
    )
    Batch.objects.filter(pk=failed_batch.pk).update(part_count=2)

    first_page = staff_client.get(reverse("admin:delivery_batch_change", args=[failed_batch.pk]))
    later_page = staff_client.get(reverse("admin:delivery_batch_change", args=[later.pk]))

    assert "1 of 2" in first_page.content.decode()
    first_url = reverse("admin:delivery_batch_change", args=[failed_batch.pk])
    assert f'2 of 2 (<a href="{first_url}">first part</a>)' in later_page.content.decode()


def test_the_retry_action_queues_failed_batches_and_skips_the_others(
    staff_client: Client,
    failed_batch: Batch,
    push_feed: Feed,
    queued: QueuedTasks,
    django_capture_on_commit_callbacks,
):
    delivered = make_batch(
        feed=push_feed,
        sequence=2,
        window_start=failed_batch.window_end,
        status=Batch.Status.DELIVERED,
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse(CHANGELIST),
            {"action": "retry_now", "_selected_action": [failed_batch.pk, delivered.pk]},
            follow=True,
        )

    messages = [str(m) for m in response.context["messages"]]
    assert "1 of 2 batches queued for sending." in messages
    assert Batch.objects.get(pk=failed_batch.pk).status == Batch.Status.READY
    assert Batch.objects.get(pk=delivered.pk).status == Batch.Status.DELIVERED
    assert queued.ids("delivery.send_batch") == [str(failed_batch.pk)]


def test_the_rebuild_action_supersedes_the_batch_with_a_new_one(
    staff_client: Client,
    failed_batch: Batch,
    queued: QueuedTasks,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse(CHANGELIST), {"action": "rebuild", "_selected_action": [failed_batch.pk]}
        )

    old = Batch.objects.get(pk=failed_batch.pk)
    assert old.status == Batch.Status.SUPERSEDED
    assert queued.ids("delivery.build_batch") == [str(old.superseded_by_id)]


def test_viewers_without_change_permission_get_no_actions(failed_batch: Batch):
    viewer = User.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_batch"))
    client = Client()
    client.force_login(viewer)

    response = client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert "retry_now" not in response.content.decode()


def test_the_attempt_list_renders_and_filters_by_outcome(staff_client: Client, failed_batch: Batch):
    url = reverse("admin:delivery_deliveryattempt_changelist")

    response = staff_client.get(url, {"outcome__exact": "permanent_failure"})

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 1
    assert staff_client.get(url, {"http_status": "400"}).status_code == 200


@pytest.mark.parametrize("term", ["nielsen", "not-a-uuid", "{batch_id}"])
def test_batches_can_be_searched_by_id_feed_or_partner(
    staff_client: Client, failed_batch: Batch, term: str
):
    response = staff_client.get(reverse(CHANGELIST), {"q": term.format(batch_id=failed_batch.pk)})

    assert response.status_code == 200
    found = list(response.context["cl"].result_list)
    assert found == ([] if term == "not-a-uuid" else [failed_batch])
