"""Signature checks with the ``standardwebhooks`` package, as an independent verifier.

The gateway signs with its own code; checking with the reference library here
proves that any Standard Webhooks consumer can verify what the gateway sends.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError


class SignatureError(ValueError):
    """The signature headers are missing, malformed, stale or do not match the body."""


def webhook_for(secret: str) -> Webhook:
    """The library's verifier for ``secret``; ValueError if it is not a usable secret."""
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError) as exc:
        raise ValueError(f"signing secret is not a valid whsec_ secret: {exc}") from exc


def signature_verify(
    *, secret: str, body: str, headers: Mapping[str, str], check_timestamp: bool = True
) -> None:
    """Raise SignatureError unless ``headers`` sign ``body`` (the uncompressed text).

    ``check_timestamp=False`` skips the five-minute freshness window: a pulled
    batch may be downloaded long after it was signed, and the puller's replay
    protection is the batch id and the body hash instead.
    """
    webhook = webhook_for(secret)
    lowered = {key.lower(): value for key, value in headers.items()}
    if check_timestamp:
        try:
            webhook.verify(body, lowered, json_parse=False)
        except WebhookVerificationError as exc:
            raise SignatureError(str(exc)) from exc
        # The library unpacks "version,signature" without guarding the shape.
        except (ValueError, binascii.Error) as exc:
            raise SignatureError(f"malformed signature header: {exc}") from exc
        return
    _verify_ignoring_age(webhook, body, lowered)


def _verify_ignoring_age(webhook: Webhook, body: str, headers: Mapping[str, str]) -> None:
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise SignatureError("Missing required headers")
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError("Invalid Signature Headers") from exc
    expected = webhook.sign(msg_id=msg_id, timestamp=signed_at, data=body).split(",", 1)[1]
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and _b64_equal(expected, value):
            return
    raise SignatureError("No matching signature found")


def _b64_equal(expected: str, given: str) -> bool:
    try:
        given_bytes = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(base64.b64decode(expected), given_bytes)
