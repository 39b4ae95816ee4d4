"""Signature checks as an independent verifier: v1 by standardwebhooks, v1a by cryptography.

The gateway signs with its own code; checking v1 (HMAC) with the reference
library and v1a (Ed25519) with ``cryptography`` directly, never with the
gateway's signing module, proves that any Standard Webhooks consumer can
verify what the gateway sends.

The simulator is configured with the keys a partner would hold, space- or
comma-separated: ``whsec_`` secrets (v1) and/or ``whpk_`` public keys (v1a).
As the specification asks, a request is accepted when any one signature in
``webhook-signature`` verifies with any one key: during a key rotation the
header carries a signature per key in use.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

HMAC_PREFIX = "whsec_"
ED25519_PUBLIC_PREFIX = "whpk_"
TOLERANCE_SECONDS = 5 * 60  # the reference library's window, for v1a too


class SignatureError(ValueError):
    """The signature headers are missing, malformed, stale or do not match the body."""


@dataclass(frozen=True)
class VerificationKeys:
    """What a partner verifies with: v1 secrets and v1a public keys."""

    hmac: tuple[Webhook, ...]
    ed25519: tuple[Ed25519PublicKey, ...]


def webhook_for(secret: str) -> Webhook:
    """The library's verifier for ``secret``; ValueError if it is not a usable secret."""
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError) as exc:
        raise ValueError(f"signing secret is not a valid whsec_ secret: {exc}") from exc


def public_key_for(public_key: str) -> Ed25519PublicKey:
    """The Ed25519 key in a ``whpk_<base64 of 32 bytes>``; ValueError if it is not one."""
    try:
        raw = base64.b64decode(public_key.removeprefix(ED25519_PUBLIC_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("public key is not a valid whpk_ key: not base64") from exc
    if len(raw) != 32:
        raise ValueError(f"public key is not a valid whpk_ key: {len(raw)} bytes, not 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def verification_keys(keys: str) -> VerificationKeys:
    """Parse ``"whsec_… whpk_…"`` (space or comma separated); ValueError on anything else."""
    hmac_keys: list[Webhook] = []
    ed25519_keys: list[Ed25519PublicKey] = []
    for item in re.split(r"[\s,]+", keys.strip()):
        if item.startswith(ED25519_PUBLIC_PREFIX):
            ed25519_keys.append(public_key_for(item))
        elif item.startswith(HMAC_PREFIX):
            hmac_keys.append(webhook_for(item))
        else:
            raise ValueError("verification keys are whsec_ secrets or whpk_ public keys")
    return VerificationKeys(hmac=tuple(hmac_keys), ed25519=tuple(ed25519_keys))


def signature_verify(
    *, secret: str, body: str, headers: Mapping[str, str], check_timestamp: bool = True
) -> None:
    """Raise SignatureError unless ``headers`` sign ``body`` (the uncompressed text).

    ``secret`` holds the verification keys (see ``verification_keys``).
    ``check_timestamp=False`` skips the five-minute freshness window: a pulled
    batch may be downloaded long after it was signed, and the puller's replay
    protection is the batch id and the body hash instead.
    """
    keys = verification_keys(secret)
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id, timestamp, signatures = _signature_headers(lowered)
    if check_timestamp:
        _check_age(timestamp)
    if _v1_verifies(keys, body, lowered, check_timestamp=check_timestamp):
        return
    content = f"{msg_id}.{timestamp}.".encode() + body.encode()
    if _v1a_verifies(keys, content, signatures):
        return
    raise SignatureError("No matching signature found")


def _signature_headers(headers: Mapping[str, str]) -> tuple[str, int, str]:
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise SignatureError("Missing required headers")
    try:
        return msg_id, int(timestamp), signatures
    except ValueError as exc:
        raise SignatureError("Invalid Signature Headers") from exc


def _check_age(timestamp: int) -> None:
    age = time.time() - timestamp
    if age > TOLERANCE_SECONDS:
        raise SignatureError("Message timestamp too old")
    if age < -TOLERANCE_SECONDS:
        raise SignatureError("Message timestamp too new")


def _v1_verifies(
    keys: VerificationKeys, body: str, headers: Mapping[str, str], *, check_timestamp: bool
) -> bool:
    for webhook in keys.hmac:
        if check_timestamp:
            try:
                webhook.verify(body, dict(headers), json_parse=False)
                return True
            except WebhookVerificationError:
                continue
            # The library unpacks "version,signature" without guarding the
            # shape; a malformed entry means no v1 match, v1a may still verify.
            except (ValueError, binascii.Error):
                return False
        elif _v1_matches_ignoring_age(webhook, body, headers):
            return True
    return False


def _v1_matches_ignoring_age(webhook: Webhook, body: str, headers: Mapping[str, str]) -> bool:
    try:
        signed_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError("Invalid Signature Headers") from exc
    expected = webhook.sign(msg_id=headers["webhook-id"], timestamp=signed_at, data=body)
    expected_bytes = base64.b64decode(expected.split(",", 1)[1])
    return any(
        _b64_equal(expected_bytes, value)
        for value in _signatures_of(headers["webhook-signature"], "v1")
    )


def _v1a_verifies(keys: VerificationKeys, content: bytes, signatures: str) -> bool:
    for value in _signatures_of(signatures, "v1a"):
        try:
            signed = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        for public_key in keys.ed25519:
            try:
                public_key.verify(signed, content)
                return True
            except InvalidSignature:
                continue
    return False


def _signatures_of(header: str, version: str) -> list[str]:
    """The base64 values of the ``version`` entries in a space-separated signature header."""
    found = []
    for candidate in header.split(" "):
        entry_version, _, value = candidate.partition(",")
        if entry_version == version and value:
            found.append(value)
    return found


def _b64_equal(expected: bytes, given: str) -> bool:
    try:
        given_bytes = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(expected, given_bytes)
