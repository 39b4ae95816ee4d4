"""Secret material: encryption at rest, random tokens and their hashes.

Partner signing keys (``whsec_`` secrets, ``whsk_`` Ed25519 private keys) and
pseudonym keys must be readable by workers, so they are encrypted with Fernet
(AES-128-CBC + HMAC) under ``FIELD_ENCRYPTION_KEYS``.
API keys and ingest tokens are only ever compared, so they are stored as a
SHA-256 hash: they are 256-bit random values, so a slow password hash adds
nothing but latency on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from gateway.delivery.signing import ed25519_key_pair

WHSEC_PREFIX = "whsec_"


class SecretDecryptionError(RuntimeError):
    """Ciphertext could not be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise SecretDecryptionError("FIELD_ENCRYPTION_KEYS is not configured")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError(
            "stored secret cannot be decrypted with the configured keys"
        ) from exc


def new_whsec() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return WHSEC_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_ed25519_key() -> tuple[str, str]:
    """A Standard Webhooks v1a key pair: (``whsk_`` private key, ``whpk_`` public key)."""
    return ed25519_key_pair(secrets.token_bytes(32))


def new_signing_key_id() -> str:
    """A public, random id for a signing key (the JWKS ``kid``); says nothing about the key."""
    return secrets.token_hex(8)


def new_hmac_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class IssuedToken:
    """A freshly generated bearer token; ``plaintext`` is shown once and never stored."""

    plaintext: str
    prefix: str
    digest: str


def token_digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def token_issue(kind: str) -> IssuedToken:
    """A token ``<kind>_<prefix>_<secret>``; the prefix finds the row, the hash proves it."""
    prefix = secrets.token_hex(6)
    plaintext = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    return IssuedToken(plaintext=plaintext, prefix=prefix, digest=token_digest(plaintext))


def token_prefix(plaintext: str, kind: str) -> str | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != kind or len(parts[1]) != 12:
        return None
    return parts[1]


def token_matches(plaintext: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(plaintext), digest)
