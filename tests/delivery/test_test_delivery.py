"""Test deliveries: one synthetic record sent like any batch, unseen by claims and reconciling."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest
import responses
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from gateway.delivery.models import Batch
from gateway.delivery.replay import TEST_NOTE, TestDeliveryRefused, feed_test_delivery
from gateway.delivery.services import batch_send, windows_dispatch
from gateway.reconciliation.selectors import batches_reached_partner
from partners.models import Feed, Partner
from partners.services import signing_secret_current
from tests.delivery.builders import WINDOW_START, batch_body, make_batch
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/ingest"


@pytest.fixture(autouse=True)
def _breaker_out_of_the_way(settings, clean_shared_store: None):
    settings.DELIVERY_CIRCUIT_MIN_REQUESTS = 1000


def test_a_test_delivery_is_a_ready_batch_of_one_synthetic_record(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    make_batch(feed=push_feed, sequence=1, status=Batch.Status.DELIVERED)

    with django_capture_on_commit_callbacks(execute=True):
        batch = feed_test_delivery(feed=push_feed)

    batch.refresh_from_db()
    assert (batch.kind, batch.status, batch.sequence) == (Batch.Kind.TEST, Batch.Status.READY, 2)
    # It claims no exposures: an empty commit range in an empty window.
    assert (batch.claim_from, batch.claim_to) == (0, 0)
    assert batch.window_start == batch.window_end
    (record,) = [json.loads(line) for line in batch_body(batch).splitlines()]
    assert record["test"] is True
    assert record["event_type"] == "test"
    assert record["event_id"] == f"test-{batch.pk}"
    assert record["note"] == TEST_NOTE
    assert batch.delivered_count == 1
    assert queued.ids("delivery.send_batch") == [str(batch.pk)]


@responses.activate
def test_a_test_delivery_is_signed_and_sent_through_the_normal_path(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
):
    responses.add(responses.POST, URL, status=204)
    batch = feed_test_delivery(feed=push_feed)

    attempt = batch_send(batch_id=batch.pk)

    batch.refresh_from_db()
    assert batch.status == Batch.Status.DELIVERED
    assert attempt is not None and attempt.number == 1
    request = responses.calls[0].request
    assert request.headers["webhook-id"] == str(batch.pk)
    body = gzip.decompress(request.body)
    Webhook(signing_secret_current(partner_id=partner.pk)).verify(
        body, dict(request.headers), json_parse=False
    )
    assert b'"test":true' in body


def test_a_delivered_test_batch_does_not_count_in_reconciliation(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
):
    window = make_batch(feed=push_feed, status=Batch.Status.DELIVERED)
    test = feed_test_delivery(feed=push_feed)
    Batch.objects.filter(pk=test.pk).update(status=Batch.Status.DELIVERED)

    assert list(batches_reached_partner(partner=partner)) == [window]


def test_a_test_delivery_leaves_the_windows_to_dispatch_alone(
    partner: Partner, queued: QueuedTasks
):
    feed = make_feed(partner=partner, deliver_from=WINDOW_START)
    test = feed_test_delivery(feed=feed)

    windows_dispatch(now=WINDOW_START + timedelta(minutes=3))

    windows = Batch.objects.filter(feed=feed, kind=Batch.Kind.WINDOW).order_by("sequence")
    assert [b.window_start for b in windows] == [
        WINDOW_START + timedelta(minutes=n) for n in range(3)
    ]
    assert [b.sequence for b in windows] == [2, 3, 4]
    test.refresh_from_db()
    assert (test.kind, test.status) == (Batch.Kind.TEST, Batch.Status.READY)


@pytest.mark.parametrize(
    ("feed_fields", "partner_status", "reason"),
    [
        ({"mode": Feed.Mode.PULL}, Partner.Status.ACTIVE, "pull feed"),
        ({"enabled": False}, Partner.Status.ACTIVE, "disabled"),
        ({}, Partner.Status.PAUSED, "not active"),
    ],
)
def test_a_test_delivery_is_refused_where_nothing_would_be_sent(
    partner: Partner, feed_fields: dict, partner_status: str, reason: str
):
    Partner.objects.filter(pk=partner.pk).update(status=partner_status)
    partner.refresh_from_db()
    feed = make_feed(partner=partner, **feed_fields)

    with pytest.raises(TestDeliveryRefused, match=reason):
        feed_test_delivery(feed=feed)
    assert not Batch.objects.exists()


def test_the_admin_action_sends_test_deliveries_and_explains_refusals(
    push_feed: Feed, partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    pull = make_feed(partner=partner, name="downloads", mode=Feed.Mode.PULL)
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-ops-1"))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:partners_feed_changelist"),
            {"action": "send_test_delivery", "_selected_action": [push_feed.pk, pull.pk]},
            follow=True,
        )

    messages = [str(m) for m in response.context["messages"]]
    batch = Batch.objects.get(feed=push_feed, kind=Batch.Kind.TEST)
    assert any("queued for sending" in m and str(batch.pk) in m for m in messages)
    assert any(m.startswith("nielsen/downloads: no test delivery: pull feed") for m in messages)
    assert queued.ids("delivery.send_batch") == [str(batch.pk)]
