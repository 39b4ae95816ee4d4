"""Standard Webhooks signatures (https://www.standardwebhooks.com/): v1 HMAC and v1a Ed25519.

Pure functions with no Django import: keys come in as their Standard Webhooks
strings and signatures go out as ``"<version>,<base64>"`` strings, so the
maths can be tested and benchmarked alone. Which keys a partner has, and when
they sign, is decided elsewhere (``gateway.delivery.signers``).

Key formats, as in the specification:

- ``whsec_<base64>``: a v1 HMAC-SHA256 secret, 24 to 64 random bytes;
- ``whsk_<base64>``: a v1a Ed25519 private key (the raw 32-byte seed);
- ``whpk_<base64>``: a v1a Ed25519 public key (the raw 32 bytes).

The signed content is ``"{msg_id}.{timestamp}.{payload}"``; the payload is
always the uncompressed body, so a partner verifies what it reads after
undoing any Content-Encoding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import mmap
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SECRET_PREFIX = "whsec_"
ED25519_SECRET_PREFIX = "whsk_"
ED25519_PUBLIC_PREFIX = "whpk_"
SIGNATURE_VERSION = "v1"
ED25519_SIGNATURE_VERSION = "v1a"

# The specification asks for at least 24 random bytes (192 bits) and at most
# 64 (512 bits); ours are 32.
HMAC_SECRET_MIN_BYTES = 24
HMAC_SECRET_MAX_BYTES = 64
ED25519_KEY_BYTES = 32
# Ed25519 signs a whole message: a signed content larger than this is gathered
# in a temporary file and mapped, not joined in memory.
CONTENT_MEMORY_BYTES = 1024 * 1024


class InvalidSecret(ValueError):
    """A key string is not a well-formed ``whsec_``, ``whsk_`` or ``whpk_`` key."""


def _key_bytes(value: str, *, prefix: str, what: str) -> bytes:
    """The bytes after ``prefix`` in ``value``, which must be strict, non-empty base64."""
    if not value.startswith(prefix):
        raise InvalidSecret(f"{what}s start with {prefix!r}")
    try:
        raw = base64.b64decode(value.removeprefix(prefix), validate=True)
    except binascii.Error as exc:
        raise InvalidSecret(f"{what} is not valid base64") from exc
    if not raw:
        raise InvalidSecret(f"{what} is empty")
    return raw


def secret_key(secret: str) -> bytes:
    """The raw HMAC key inside a ``whsec_<base64>`` secret."""
    key = _key_bytes(secret, prefix=SECRET_PREFIX, what="signing secret")
    if not HMAC_SECRET_MIN_BYTES <= len(key) <= HMAC_SECRET_MAX_BYTES:
        raise InvalidSecret(
            f"signing secret must hold {HMAC_SECRET_MIN_BYTES} to {HMAC_SECRET_MAX_BYTES} "
            f"bytes, not {len(key)}"
        )
    return key


def ed25519_private_key(secret: str) -> Ed25519PrivateKey:
    """The Ed25519 private key inside a ``whsk_<base64 of the 32-byte seed>`` key."""
    seed = _key_bytes(secret, prefix=ED25519_SECRET_PREFIX, what="Ed25519 secret key")
    if len(seed) != ED25519_KEY_BYTES:
        raise InvalidSecret(f"Ed25519 secret key must hold 32 bytes, not {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def ed25519_public_key(public_key: str) -> Ed25519PublicKey:
    """The Ed25519 public key inside a ``whpk_<base64 of 32 bytes>`` key."""
    raw = _key_bytes(public_key, prefix=ED25519_PUBLIC_PREFIX, what="Ed25519 public key")
    if len(raw) != ED25519_KEY_BYTES:
        raise InvalidSecret(f"Ed25519 public key must hold 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def ed25519_key_pair(seed: bytes) -> tuple[str, str]:
    """``(whsk_, whpk_)`` for a 32-byte seed; the caller supplies the randomness."""
    if len(seed) != ED25519_KEY_BYTES:
        raise InvalidSecret(f"an Ed25519 seed must hold 32 bytes, not {len(seed)}")
    secret = ED25519_SECRET_PREFIX + base64.b64encode(seed).decode("ascii")
    return secret, public_key_for(secret)


def public_key_for(secret: str) -> str:
    """The ``whpk_`` public key that verifies what the ``whsk_`` key ``secret`` signs."""
    raw = ed25519_private_key(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return ED25519_PUBLIC_PREFIX + base64.b64encode(raw).decode("ascii")


def signed_prefix(*, msg_id: str, timestamp: int) -> bytes:
    """``"{msg_id}.{timestamp}."``, what both schemes sign before the payload."""
    if "." in msg_id or not msg_id:
        # A dot would make "{id}.{timestamp}" ambiguous for the verifier.
        raise ValueError("webhook id must be non-empty and contain no '.'")
    if timestamp < 0:
        raise ValueError("webhook timestamp must be a non-negative Unix time")
    return f"{msg_id}.{timestamp}.".encode()


def signed_content(*, msg_id: str, timestamp: int, payload: bytes) -> bytes:
    """``"{msg_id}.{timestamp}.{payload}"``, the bytes both schemes sign."""
    return signed_prefix(msg_id=msg_id, timestamp=timestamp) + payload


def signature(*, secret: str, msg_id: str, timestamp: int, payload: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, content)>`` for a ``whsec_`` secret."""
    return signatures_of_chunks(
        secrets=[secret], msg_id=msg_id, timestamp=timestamp, chunks=[payload]
    )[0]


def signatures_of_chunks(
    *, secrets: Sequence[str], msg_id: str, timestamp: int, chunks: Iterable[bytes]
) -> list[str]:
    """One v1 signature per ``whsec_`` secret over a payload given in pieces, read once.

    HMAC is a stream: the payload is never joined (nor copied behind the
    prefix), so a body of hundreds of megabytes can be signed as it is inflated.
    """
    prefix = signed_prefix(msg_id=msg_id, timestamp=timestamp)
    macs = [hmac.new(secret_key(secret), prefix, hashlib.sha256) for secret in secrets]
    for chunk in chunks:
        for mac in macs:
            mac.update(chunk)
    return [_encoded(SIGNATURE_VERSION, mac.digest()) for mac in macs]


def signatures_of_pieces(
    *, secrets: Sequence[str], msg_id: str, timestamp: int, chunks: Iterable[bytes]
) -> list[str]:
    """One signature per key, v1 or v1a, in the order of ``secrets``, over a payload in pieces.

    The pieces are read once. v1 keys hash them as they come; Ed25519 signs a
    whole message, so with a v1a key the signed content is gathered as well:
    in memory up to ``CONTENT_MEMORY_BYTES``, beyond that in a temporary file
    mapped read-only, whose pages the kernel can drop and read again, so a
    body of hundreds of megabytes does not become as much process memory.
    """
    ed25519_keys = {
        n: ed25519_private_key(secret)
        for n, secret in enumerate(secrets)
        if secret.startswith(ED25519_SECRET_PREFIX)
    }
    if not ed25519_keys:
        return signatures_of_chunks(
            secrets=secrets, msg_id=msg_id, timestamp=timestamp, chunks=chunks
        )
    prefix = signed_prefix(msg_id=msg_id, timestamp=timestamp)
    macs = {
        n: hmac.new(secret_key(secret), prefix, hashlib.sha256)
        for n, secret in enumerate(secrets)
        if n not in ed25519_keys
    }
    updates = [mac.update for mac in macs.values()]
    with _gathered(prefix, chunks, also=updates) as content:
        signed = {n: key.sign(content) for n, key in ed25519_keys.items()}
    return [
        _encoded(ED25519_SIGNATURE_VERSION, signed[n])
        if n in signed
        else _encoded(SIGNATURE_VERSION, macs[n].digest())
        for n in range(len(secrets))
    ]


@contextmanager
def _gathered(
    prefix: bytes, chunks: Iterable[bytes], *, also: Sequence[Callable[[bytes], object]]
) -> Iterator[bytearray | memoryview]:
    """``prefix`` and the pieces as one buffer (see ``signatures_of_pieces``); feeds ``also``."""
    gathered = bytearray(prefix)
    spooled = None
    try:
        for chunk in chunks:
            for update in also:
                update(chunk)
            if spooled is None and len(gathered) + len(chunk) > CONTENT_MEMORY_BYTES:
                spooled = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
                spooled.write(gathered)
                gathered = bytearray()
            if spooled is None:
                gathered += chunk
            else:
                spooled.write(chunk)
        if spooled is None:
            yield gathered
            return
        spooled.flush()
        with (
            mmap.mmap(spooled.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
            memoryview(mapped) as view,
        ):
            yield view
    finally:
        if spooled is not None:
            spooled.close()


def ed25519_signature(*, secret: str, msg_id: str, timestamp: int, payload: bytes) -> str:
    """``v1a,<base64 Ed25519 signature of content>`` for a ``whsk_`` key."""
    content = signed_content(msg_id=msg_id, timestamp=timestamp, payload=payload)
    signed = ed25519_private_key(secret).sign(content)
    return _encoded(ED25519_SIGNATURE_VERSION, signed)


def _encoded(version: str, raw: bytes) -> str:
    """A signature as Standard Webhooks writes it: ``"<version>,<base64>"``."""
    return f"{version},{base64.b64encode(raw).decode('ascii')}"


def sign(*, secret: str, msg_id: str, timestamp: int, payload: bytes) -> str:
    """The signature for any signing key: its prefix says which scheme it belongs to."""
    if secret.startswith(ED25519_SECRET_PREFIX):
        return ed25519_signature(secret=secret, msg_id=msg_id, timestamp=timestamp, payload=payload)
    if secret.startswith(SECRET_PREFIX):
        return signature(secret=secret, msg_id=msg_id, timestamp=timestamp, payload=payload)
    # Never echo the value: it may be a secret pasted into the wrong place.
    raise InvalidSecret(f"signing keys start with {SECRET_PREFIX!r} or {ED25519_SECRET_PREFIX!r}")


def signature_headers(*, msg_id: str, timestamp: int, signatures: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers; several signatures are space-separated."""
    if not signatures:
        raise ValueError("a webhook needs at least one signature")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def webhook_headers(*, secret: str, msg_id: str, timestamp: int, payload: bytes) -> dict[str, str]:
    """The three headers signed with one key (``whsec_`` or ``whsk_``) over ``payload``."""
    signed = sign(secret=secret, msg_id=msg_id, timestamp=timestamp, payload=payload)
    return signature_headers(msg_id=msg_id, timestamp=timestamp, signatures=[signed])


def ed25519_jwk(*, public_key: str, key_id: str) -> dict[str, str]:
    """The RFC 8037 JSON Web Key of a ``whpk_`` key, for a JWKS document (RFC 7517)."""
    ed25519_public_key(public_key)  # refuse to publish anything but a valid key
    raw = base64.b64decode(public_key.removeprefix(ED25519_PUBLIC_PREFIX))
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")  # base64url, no padding
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": key_id, "use": "sig", "alg": "EdDSA"}
