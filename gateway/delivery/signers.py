"""Who signs a partner's webhooks: the ``Signer`` interface and the factory that makes one.

Callers (the push send path, the pull download) ask ``partner_signer`` for the
signer of a partner's keys in use at the attempt's timestamp and put every
signature it returns in one ``webhook-signature`` header: during a rotation's
overlap that is the old and the new key, so a partner that has not switched
yet keeps verifying.

The factory is named by the ``SIGNER_FACTORY`` setting (a dotted path), so
keys held in a KMS or HSM can be plugged in without touching the call sites.
The default, ``partners.services.signer_from_database``, decrypts the keys
stored Fernet-encrypted in the database and signs in process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from gateway.delivery import signing
from gateway.errors import DeliveryError

DEFAULT_SIGNER_FACTORY = "partners.services.signer_from_database"


class NoSigningKey(LookupError):
    """The partner has no signing key in use at that moment, so nothing can be signed."""


class Signer(Protocol):
    """Signs one webhook with every key a partner has in use.

    ``sign`` returns Standard Webhooks signature strings (``"v1,…"``,
    ``"v1a,…"``), one per key, in the order of ``key_ids``.
    """

    @property
    def key_ids(self) -> Sequence[str]: ...

    def sign(self, *, msg_id: str, timestamp: int, payload: bytes) -> list[str]: ...


@runtime_checkable
class StreamingSigner(Signer, Protocol):
    """A Signer that can also sign a payload given in pieces, without holding it whole.

    Optional: ``stream_signed_headers`` joins the pieces for a signer without it.
    """

    def sign_chunks(self, *, msg_id: str, timestamp: int, chunks: Iterable[bytes]) -> list[str]: ...


class SignerFactory(Protocol):
    """Makes the signer of ``partner_id``'s keys in use at ``at``; raises NoSigningKey if none."""

    def __call__(self, *, partner_id: int, at: datetime) -> Signer: ...


@dataclass(frozen=True)
class SigningKeyMaterial:
    """One key in plaintext, in memory only: its public id and its ``whsec_``/``whsk_`` string."""

    key_id: str
    secret: str = field(repr=False)  # never in logs or tracebacks


@dataclass(frozen=True)
class LocalSigner:
    """Signs in process with keys it holds in plaintext (the default, database-backed signer)."""

    keys: tuple[SigningKeyMaterial, ...]

    def __post_init__(self) -> None:
        # A header without a signature would be refused by every partner: fail here instead.
        if not self.keys:
            raise NoSigningKey("a signer needs at least one key")

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.key_id for key in self.keys)

    def sign(self, *, msg_id: str, timestamp: int, payload: bytes) -> list[str]:
        return [
            signing.sign(secret=key.secret, msg_id=msg_id, timestamp=timestamp, payload=payload)
            for key in self.keys
        ]

    @property
    def holds_whole_payload(self) -> bool:
        """Whether ``sign_chunks`` gathers the whole payload: a v1a (Ed25519) key signs whole
        messages (on disk past ``signing.CONTENT_MEMORY_BYTES``, but all of it)."""
        return not all(key.secret.startswith(signing.SECRET_PREFIX) for key in self.keys)

    def sign_chunks(self, *, msg_id: str, timestamp: int, chunks: Iterable[bytes]) -> list[str]:
        return signing.signatures_of_pieces(
            secrets=[key.secret for key in self.keys],
            msg_id=msg_id,
            timestamp=timestamp,
            chunks=chunks,
        )


def signs_in_pieces(signer: Signer) -> bool:
    """Whether ``signer`` signs a payload given in pieces without ever holding it whole.

    A StreamingSigner may say otherwise with a ``holds_whole_payload`` property.
    """
    return isinstance(signer, StreamingSigner) and not getattr(signer, "holds_whole_payload", False)


@lru_cache(maxsize=4)
def _factory(path: str) -> SignerFactory:
    return import_string(path)


def partner_signer(*, partner_id: int, timestamp: int) -> Signer:
    """The signer of the keys ``partner_id`` has in use at ``timestamp`` (Unix seconds).

    Keys are chosen for the moment the signature claims (``webhook-timestamp``),
    so a retry after a rotation is signed with the keys in use at that retry.
    """
    factory = _factory(getattr(settings, "SIGNER_FACTORY", DEFAULT_SIGNER_FACTORY))
    return factory(partner_id=partner_id, at=datetime.fromtimestamp(timestamp, tz=UTC))


def attempt_signer(*, partner_id: int, timestamp: int) -> Signer:
    """``partner_signer`` for a delivery attempt: without a key in use, a permanent failure.

    A partner without a signing key would refuse every unsigned delivery, so
    waiting would not help; the attempt fails and says why.
    """
    try:
        return partner_signer(partner_id=partner_id, timestamp=timestamp)
    except NoSigningKey as exc:
        raise DeliveryError("the partner has no active signing secret", transient=False) from exc


def signed_headers(
    *, signer: Signer, msg_id: str, timestamp: int, payload: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers, with every signature ``signer`` makes."""
    signatures = signer.sign(msg_id=msg_id, timestamp=timestamp, payload=payload)
    return signing.signature_headers(msg_id=msg_id, timestamp=timestamp, signatures=signatures)


def stream_signed_headers(
    *, signer: Signer, msg_id: str, timestamp: int, chunks: Iterable[bytes]
) -> dict[str, str]:
    """``signed_headers`` over a payload given in pieces, read once, in order."""
    if isinstance(signer, StreamingSigner):
        signatures = signer.sign_chunks(msg_id=msg_id, timestamp=timestamp, chunks=chunks)
    else:
        signatures = signer.sign(msg_id=msg_id, timestamp=timestamp, payload=b"".join(chunks))
    return signing.signature_headers(msg_id=msg_id, timestamp=timestamp, signatures=signatures)
