"""What a push carries in ``webhook-signature``: a signature per key in use at that attempt."""

from __future__ import annotations

import base64
import gzip
from datetime import timedelta

import pytest
import responses
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook

from gateway.delivery.models import Batch
from gateway.delivery.services import batch_send
from partners.models import Feed, Partner, SigningSecret
from partners.services import signing_key_rotate, signing_secret_current
from tests.delivery.builders import make_batch
from tests.delivery.conftest import QueuedTasks

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/ingest"
RECORDS = [{"campaign_id": "cmp-1", "event_id": "evt-1"}]


@pytest.fixture
def batch(push_feed: Feed) -> Batch:
    return make_batch(feed=push_feed, status=Batch.Status.READY, records=RECORDS)


def _sent() -> tuple[bytes, dict[str, str]]:
    request = responses.calls[-1].request
    return gzip.decompress(request.body), dict(request.headers)


@responses.activate
def test_a_push_carries_v1_and_v1a_signatures_that_each_verify(
    batch: Batch, partner: Partner, queued: QueuedTasks
) -> None:
    issued = signing_key_rotate(partner=partner, algorithm=SigningSecret.Algorithm.ED25519)
    responses.add(responses.POST, URL, status=200)

    batch_send(batch_id=batch.pk)

    body, headers = _sent()
    Webhook(signing_secret_current(partner_id=partner.pk)).verify(body, headers, json_parse=False)
    [v1a] = [s for s in headers["webhook-signature"].split(" ") if s.startswith("v1a,")]
    public = Ed25519PublicKey.from_public_bytes(
        base64.b64decode(issued.public_key.removeprefix("whpk_"))
    )
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    public.verify(base64.b64decode(v1a.removeprefix("v1a,")), content)


@responses.activate
def test_during_an_overlap_a_push_verifies_with_the_old_and_the_new_secret(
    batch: Batch, partner: Partner, queued: QueuedTasks
) -> None:
    old = signing_secret_current(partner_id=partner.pk)
    new = signing_key_rotate(partner=partner, overlap=timedelta(hours=24)).secret
    responses.add(responses.POST, URL, status=200)

    batch_send(batch_id=batch.pk)

    body, headers = _sent()
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers, json_parse=False)
