"""The metadata headers of a push: sequence, kind, window, and the batch a re-build replaces."""

from __future__ import annotations

import pytest
import responses

from gateway.delivery.models import Batch
from gateway.delivery.services import batch_headers, batch_send, batch_supersede
from partners.models import Feed
from tests.delivery.builders import make_batch
from tests.delivery.conftest import QueuedTasks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_shared_store")]

URL = "http://127.0.0.1:9/ingest"
RECORDS = [{"event_id": "evt-1"}]


@responses.activate
def test_a_push_says_which_batch_it_is(push_feed: Feed, queued: QueuedTasks):
    responses.add(responses.POST, URL, status=200)
    batch = make_batch(feed=push_feed, sequence=4, status=Batch.Status.READY, records=RECORDS)

    batch_send(batch_id=batch.pk)

    headers = responses.calls[0].request.headers
    assert headers["Gateway-Batch-Sequence"] == "4"
    assert headers["Gateway-Batch-Kind"] == "window"
    assert headers["Gateway-Window-Start"] == "2026-11-24T09:00:00Z"
    assert headers["Gateway-Window-End"] == "2026-11-24T09:01:00Z"
    assert "Gateway-Supersedes" not in headers


@responses.activate
def test_a_rebuilt_batch_names_the_one_it_replaces(push_feed: Feed, queued: QueuedTasks):
    responses.add(responses.POST, URL, status=200)
    old = make_batch(feed=push_feed, status=Batch.Status.DELIVERED, records=RECORDS)
    new = batch_supersede(batch_id=old.pk)
    assert new is not None
    Batch.objects.filter(pk=new.pk).update(status=Batch.Status.READY, body_path=old.body_path)

    batch_send(batch_id=new.pk)

    headers = responses.calls[0].request.headers
    assert headers["webhook-id"] == str(new.pk)
    assert headers["Gateway-Supersedes"] == str(old.pk)


def test_headers_of_a_batch_loaded_elsewhere_name_the_one_it_replaces(
    push_feed: Feed, queued: QueuedTasks
):
    old = make_batch(feed=push_feed, status=Batch.Status.DELIVERED, records=RECORDS)
    new = batch_supersede(batch_id=old.pk)
    assert new is not None

    assert batch_headers(Batch.objects.get(pk=new.pk))["Gateway-Supersedes"] == str(old.pk)
    assert "Gateway-Supersedes" not in batch_headers(Batch.objects.get(pk=old.pk))
