"""Standard Webhooks v1 signatures (https://www.standardwebhooks.com/).

Pure functions with no Django import: the secret comes in as a string and the
headers go out as a dict, so the maths can be tested and benchmarked alone.
The signature always covers the uncompressed payload, so a partner verifies
what it reads after undoing any Content-Encoding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"


class InvalidSecret(ValueError):
    """The signing secret is not ``whsec_`` followed by non-empty base64."""


def secret_key(secret: str) -> bytes:
    """The raw HMAC key inside a ``whsec_<base64>`` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(f"signing secrets start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise InvalidSecret("signing secret is not valid base64") from exc
    if not key:
        raise InvalidSecret("signing secret is empty")
    return key


def signature(*, secret: str, msg_id: str, timestamp: int, payload: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "{msg_id}.{timestamp}.{payload}")>``."""
    if "." in msg_id or not msg_id:
        # A dot would make "{id}.{timestamp}" ambiguous for the verifier.
        raise ValueError("webhook id must be non-empty and contain no '.'")
    if timestamp < 0:
        raise ValueError("webhook timestamp must be a non-negative Unix time")
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def webhook_headers(*, secret: str, msg_id: str, timestamp: int, payload: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for ``payload`` (uncompressed bytes)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(
            secret=secret, msg_id=msg_id, timestamp=timestamp, payload=payload
        ),
    }
