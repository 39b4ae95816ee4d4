"""The first attempt's signatures, made by the build that wrote the body.

Every attempt of a push is signed with its own ``webhook-timestamp``, and the
timestamp comes before the payload in what is signed, so nothing of one
attempt's signature serves another. The first attempt, though, usually follows
the build within a second, and signing a body costs about as much as all the
rest of a send's bookkeeping (docs/benchmarks.md, Delivery (b)). So the build,
which has just written the body, signs it too, dated when it signs, and keeps
the signatures on the batch (``Batch.first_signature``). The first attempt
sends them instead of signing afresh when all of these hold:

- it is the batch's first attempt: a retry or a replay signs with its own
  timestamp, as always;
- they are at most ``DELIVERY_FIRST_SIGNATURE_MAX_AGE_SECONDS`` old (60 by
  default; Standard Webhooks receivers accept five minutes);
- they were made with exactly the keys in use for the attempt: after a
  rotation or a revocation, the attempt signs afresh;
- the stored body is byte for byte the one signed (its SHA-256, checked on
  the preparation thread); if not, the body was changed or damaged after the
  build, and is not sent at all.

Only feeds that send the stored gzip body as it is get them: a JWE is made
anew for every attempt, and an uncompressed feed's NDJSON is inflated for the
attempt anyway. A signer that would hold the whole NDJSON to sign it (an
Ed25519 key in use) is not asked at build time, where a body can be half a
gigabyte of NDJSON. A build that cannot sign (no key, a signer failing) goes
on without: the send signs, and reports any problem on the attempt.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings

from gateway.delivery.models import Batch
from gateway.delivery.signers import NoSigningKey, Signer, partner_signer, signs_in_pieces
from gateway.delivery.storage import body_open
from gateway.delivery.wire import Hasher, inflated_chunks, sends_stored_body
from partners.models import Feed

logger = logging.getLogger(__name__)

# Pieces of the stored body read to take its SHA-256 (any storage backend).
READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FirstSignature:
    """Signatures of a batch's NDJSON dated ``timestamp``, and what they were made with."""

    timestamp: int
    key_ids: tuple[str, ...]
    signatures: tuple[str, ...]
    # SHA-256 (hex) of the stored gzip body, as read when it was signed.
    stored_sha256: str

    def as_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "key_ids": list(self.key_ids),
            "signatures": list(self.signatures),
            "stored_sha256": self.stored_sha256,
        }

    @classmethod
    def from_json(cls, value: Any) -> FirstSignature | None:
        """The stored form read back; None for anything malformed (the attempt then signs)."""
        if not isinstance(value, dict):
            return None
        timestamp = value.get("timestamp")
        key_ids, signatures = _strings(value.get("key_ids")), _strings(value.get("signatures"))
        stored_sha256 = value.get("stored_sha256")
        if (
            type(timestamp) is not int
            or not key_ids
            or len(key_ids) != len(signatures)
            or not isinstance(stored_sha256, str)
        ):
            return None
        return cls(
            timestamp=timestamp,
            key_ids=key_ids,
            signatures=signatures,
            stored_sha256=stored_sha256,
        )


def _strings(value: Any) -> tuple[str, ...]:
    """A stored list of strings as a tuple; empty when it is anything else."""
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        return ()
    return tuple(value)


def max_age_seconds() -> int:
    """How old the build's signatures may be at the first attempt; 0: builds do not sign."""
    return settings.DELIVERY_FIRST_SIGNATURE_MAX_AGE_SECONDS


def first_signature_make(*, batch: Batch, body_path: str) -> FirstSignature | None:
    """Sign the body just stored for ``batch``'s first attempt; None when that does not apply."""
    feed: Feed = batch.feed
    if max_age_seconds() <= 0 or not body_path or not _signed_at_send(feed):
        return None
    timestamp = int(time.time())
    try:
        signer = partner_signer(partner_id=feed.partner_id, timestamp=timestamp)
        if not signs_in_pieces(signer):
            return None
        digest = hashlib.sha256()
        with body_open(body_path) as stored:
            # One read of the stored body: inflated for the signatures, hashed as stored.
            reader = _DigestingReader(stored, digest)
            signatures = signer.sign_chunks(
                msg_id=str(batch.pk), timestamp=timestamp, chunks=inflated_chunks(reader)
            )
            reader.drain()  # anything the inflater left unread (nothing, for a sound body)
        stored_sha256 = digest.hexdigest()
    except NoSigningKey:
        return None  # the send fails, and says why, on the attempt
    except Exception as exc:
        # Signing here only saves the first attempt time; the send signs instead.
        logger.warning(
            "batch %s: not signed at build (%s); the send signs it", batch.pk, type(exc).__name__
        )
        return None
    return FirstSignature(
        timestamp=timestamp,
        key_ids=tuple(signer.key_ids),
        signatures=tuple(signatures),
        stored_sha256=stored_sha256,
    )


def first_signature_for_attempt(*, batch: Batch, signer: Signer, now: int) -> FirstSignature | None:
    """The build's signatures if this attempt may send them (see the module's docstring)."""
    if batch.attempt_count != 0 or not _signed_at_send(batch.feed):
        return None
    first = FirstSignature.from_json(batch.first_signature)
    if first is None:
        return None
    if not 0 <= now - first.timestamp <= max_age_seconds():
        return None
    if first.key_ids != tuple(signer.key_ids):
        return None
    return first


def stored_body_sha256(body_path: str) -> str:
    """SHA-256 (hex) of the stored body's bytes, as stored (gzip)."""
    digest = hashlib.sha256()
    with body_open(body_path) as stored:
        _DigestingReader(stored, digest).drain()
    return digest.hexdigest()


class _DigestingReader:
    """A file read once, in order, whose bytes are fed to ``digest`` as they are read."""

    def __init__(self, file: IO[bytes], digest: Hasher) -> None:
        self._file = file
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._digest.update(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        # What ISA-L's reader calls.
        count = self._file.readinto(buffer)  # type: ignore[attr-defined]  # binary files have it
        self._digest.update(memoryview(buffer)[:count])
        return count

    def drain(self) -> None:
        """Read (and digest) the rest of the file."""
        while self.read(READ_BYTES):
            pass


def _signed_at_send(feed: Feed) -> bool:
    """Whether ``feed``'s attempts carry a signature over the stored body's NDJSON as it is."""
    return feed.mode in (Feed.Mode.PUSH, Feed.Mode.STREAM) and sends_stored_body(feed)
