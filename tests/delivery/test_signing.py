"""Standard Webhooks signatures, checked against the standardwebhooks package as verifier."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.delivery.signing import InvalidSecret, secret_key, signature, webhook_headers

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
PAYLOAD = (
    b'{"campaign_id":"cmp-1","event_id":"evt-1"}\n{"campaign_id":"cmp-1","event_id":"evt-2"}\n'
)


def test_headers_verify_with_the_reference_implementation():
    headers = webhook_headers(
        secret=SECRET, msg_id="batch-1", timestamp=int(time.time()), payload=PAYLOAD
    )

    assert Webhook(SECRET).verify(PAYLOAD, headers, json_parse=False) is None


def test_it_returns_exactly_the_three_standard_headers():
    headers = webhook_headers(secret=SECRET, msg_id="b-1", timestamp=1_790_000_000, payload=b"")

    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "b-1"
    assert headers["webhook-timestamp"] == "1790000000"
    assert headers["webhook-signature"].startswith("v1,")


def test_the_signature_matches_the_reference_signer_for_a_fixed_timestamp():
    from datetime import UTC, datetime

    reference = Webhook(SECRET).sign(
        "msg-1", datetime.fromtimestamp(1_790_000_000, tz=UTC), PAYLOAD.decode()
    )

    assert signature(secret=SECRET, msg_id="msg-1", timestamp=1_790_000_000, payload=PAYLOAD) == (
        reference
    )


def test_a_tampered_payload_fails_verification():
    headers = webhook_headers(
        secret=SECRET, msg_id="batch-1", timestamp=int(time.time()), payload=PAYLOAD
    )

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(PAYLOAD.replace(b"evt-2", b"evt-3"), headers, json_parse=False)


def test_another_secret_fails_verification():
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    headers = webhook_headers(
        secret=SECRET, msg_id="batch-1", timestamp=int(time.time()), payload=PAYLOAD
    )

    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(PAYLOAD, headers, json_parse=False)


def test_the_id_and_timestamp_are_part_of_what_is_signed():
    base = signature(secret=SECRET, msg_id="a", timestamp=1, payload=PAYLOAD)

    assert signature(secret=SECRET, msg_id="b", timestamp=1, payload=PAYLOAD) != base
    assert signature(secret=SECRET, msg_id="a", timestamp=2, payload=PAYLOAD) != base


def test_the_secret_key_is_the_base64_after_the_prefix():
    assert secret_key(SECRET) == b"k" * 32


@pytest.mark.parametrize(
    "secret",
    ["", "k" * 44, base64.b64encode(b"k" * 32).decode(), "whsec_", "whsec_not base64!"],
)
def test_it_rejects_malformed_secrets(secret: str):
    with pytest.raises(InvalidSecret):
        signature(secret=secret, msg_id="a", timestamp=1, payload=b"")


@pytest.mark.parametrize("msg_id", ["", "a.b"])
def test_it_rejects_ids_that_would_make_the_signed_string_ambiguous(msg_id: str):
    with pytest.raises(ValueError, match="webhook id"):
        signature(secret=SECRET, msg_id=msg_id, timestamp=1, payload=b"")


def test_it_rejects_negative_timestamps():
    with pytest.raises(ValueError, match="timestamp"):
        signature(secret=SECRET, msg_id="a", timestamp=-1, payload=b"")
