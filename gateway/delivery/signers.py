"""Who signs a partner's webhooks: the ``Signer`` interface and the factory that makes one.

Callers (the push send path, the pull download) ask ``partner_signer`` for the
signer of a partner's keys in use at the attempt's timestamp and put every
signature it returns in one ``webhook-signature`` header: during a rotation's
overlap that is the old and the new key, so a partner that has not switched
yet keeps verifying.

The factory is named by the ``SIGNER_FACTORY`` setting (a dotted path), so
keys held in a KMS or HSM can be plugged in without touching the call sites.
The default, ``partners.services.signer_from_database``, decrypts the keys
stored Fernet-encrypted in the database and signs in process. Where partners
find the public halves of v1a keys (the JWKS document) is named the same way,
by ``SIGNING_PUBLIC_KEYS``: ``published_public_keys`` checks that whatever
the source gives is an Ed25519 public JWK before anything is published.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from gateway.delivery import signing
from gateway.errors import DeliveryError, KeyPublicationError

if TYPE_CHECKING:
    from partners.models import Partner

DEFAULT_SIGNER_FACTORY = "partners.services.signer_from_database"
DEFAULT_PUBLIC_KEYS_SOURCE = "partners.services.signing_public_keys"
# JWK members that hold private or secret key material (RFC 7517, 7518, 8037).
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


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
    """Makes the signer of ``partner``'s keys in use at ``at``; raises NoSigningKey if none.

    ``partner`` is as its caller loaded it: a KMS-backed factory may name the
    key by the partner's slug; the default uses the partner's
    ``unrevoked_signing_keys`` when the send path loaded them with the batch.
    """

    def __call__(self, *, partner: Partner, at: datetime) -> Signer: ...


class PublicKeysSource(Protocol):
    """The JWKs (RFC 8037) of ``partner``'s v1a keys that sign at ``at`` or will."""

    def __call__(self, *, partner: Partner, at: datetime) -> list[dict[str, str]]: ...


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


def signs_in_pieces(signer: Signer) -> TypeGuard[StreamingSigner]:
    """Whether ``signer`` signs a payload given in pieces without ever holding it whole.

    A StreamingSigner may say otherwise with a ``holds_whole_payload`` property.
    """
    return isinstance(signer, StreamingSigner) and not getattr(signer, "holds_whole_payload", False)


@lru_cache(maxsize=4)
def _factory(path: str) -> Any:
    """The callable at dotted ``path`` (a signer factory or a public keys source)."""
    return import_string(path)


def partner_signer(*, partner: Partner, timestamp: int) -> Signer:
    """The signer of the keys ``partner`` has in use at ``timestamp`` (Unix seconds).

    Keys are chosen for the moment the signature claims (``webhook-timestamp``),
    so a retry after a rotation is signed with the keys in use at that retry.
    """
    factory: SignerFactory = _factory(getattr(settings, "SIGNER_FACTORY", DEFAULT_SIGNER_FACTORY))
    return factory(partner=partner, at=datetime.fromtimestamp(timestamp, tz=UTC))


def published_public_keys(*, partner: Partner, at: datetime) -> list[dict[str, str]]:
    """The verification keys to publish for ``partner``, from the ``SIGNING_PUBLIC_KEYS`` source.

    Each must be an Ed25519 public JWK with a ``kid``; anything else, above
    all a key with private members, raises KeyPublicationError and nothing
    is published: a misconfigured source must not leak a private key.
    """
    source: PublicKeysSource = _factory(
        getattr(settings, "SIGNING_PUBLIC_KEYS", DEFAULT_PUBLIC_KEYS_SOURCE)
    )
    keys = source(partner=partner, at=at)
    if not isinstance(keys, list):
        raise KeyPublicationError("the key source did not give a list of JWKs")
    for key in keys:
        _public_jwk_check(key)
    return keys


def _public_jwk_check(key: Any) -> None:
    if not isinstance(key, dict):
        raise KeyPublicationError("the key source gave something that is not a JWK")
    if PRIVATE_JWK_MEMBERS & key.keys():
        # Never echo the key: it holds private material.
        raise KeyPublicationError(f"the key source gave a private key (kid {key.get('kid')!r})")
    if key.get("kty") != "OKP" or key.get("crv") != "Ed25519":
        raise KeyPublicationError("the key source gave a key that is not an Ed25519 JWK")
    if not all(isinstance(key.get(member), str) and key[member] for member in ("x", "kid")):
        raise KeyPublicationError("the key source gave a JWK without its x or kid")


def attempt_signer(*, partner: Partner, timestamp: int) -> Signer:
    """``partner_signer`` for a delivery attempt: without a key in use, a permanent failure.

    A partner without a signing key would refuse every unsigned delivery, so
    waiting would not help; the attempt fails and says why.
    """
    try:
        return partner_signer(partner=partner, timestamp=timestamp)
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
