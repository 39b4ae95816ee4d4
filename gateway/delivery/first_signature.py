"""The first attempt's signatures, made by the build that wrote the body.

Every attempt of a push is signed with its own ``webhook-timestamp``, and the
timestamp comes before the payload in what is signed, so nothing of one
attempt's signature serves another. The first attempt, though, usually follows
the build within a second, and signing a body costs about as much as all the
rest of a send's bookkeeping (docs/benchmarks.md, Delivery (b)). So the build
signs the body too, as it writes it (``FirstSigning``: the NDJSON is read
once, never from storage again), dated when it starts writing it, and keeps
the signatures and the SHA-256 of the gzip file it stored on the batch
(``Batch.first_signature``). The first attempt sends them instead of signing
afresh when all of these hold:

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
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings

from gateway.delivery.models import Batch
from gateway.delivery.signers import (
    NoSigningKey,
    Signer,
    StreamingSigner,
    partner_signer,
    signs_in_pieces,
)
from gateway.delivery.wire import sends_stored_body
from partners.models import Feed

logger = logging.getLogger(__name__)

# Pieces of the stored body read to take its SHA-256 (any storage backend).
READ_BYTES = 1024 * 1024
# Chunks of NDJSON waiting for the signer at most (each about body.CHUNK_BYTES).
QUEUED_CHUNKS = 4


@dataclass(frozen=True)
class FirstSignature:
    """Signatures of a batch's NDJSON dated ``timestamp``, and what they were made with."""

    timestamp: int
    key_ids: tuple[str, ...]
    signatures: tuple[str, ...]
    # SHA-256 (hex) of the stored gzip body, as written when it was signed.
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


def first_signing_start(*, batch: Batch) -> FirstSigning | None:
    """Start signing the body about to be written for ``batch``; None when that does not apply."""
    feed: Feed = batch.feed
    if max_age_seconds() <= 0 or not _signed_at_send(feed):
        return None
    timestamp = int(time.time())
    try:
        signer = partner_signer(partner=feed.partner, timestamp=timestamp)
    except NoSigningKey:
        return None  # the send fails, and says why, on the attempt
    except Exception as exc:
        _not_signed(batch, exc)
        return None
    if not signs_in_pieces(signer):
        return None
    return FirstSigning(batch=batch, signer=signer, timestamp=timestamp)


class FirstSigning:
    """Signs a body's NDJSON for its first attempt as the build writes it: read once, never again.

    The body writer's compression thread hands each chunk to ``update``;
    the signer reads them, in order, on a thread of its own (``sign_chunks``
    takes an iterable, whatever holds the keys), a few chunks behind at most.
    ``finish`` waits for the signatures once the body is stored; ``abandon``
    lets the thread go when there is nothing to sign after all. A signer that
    fails costs only the first attempt's head start: the send signs instead.
    """

    def __init__(self, *, batch: Batch, signer: StreamingSigner, timestamp: int) -> None:
        self._batch = batch
        self._signer = signer
        self._timestamp = timestamp
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._ended = False  # the signer has read the end of the chunks
        self._closed = False  # no more chunks are taken
        self._signatures: list[str] = []
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="first-signing", daemon=True)
        self._thread.start()

    def update(self, chunk: bytes) -> None:
        # After abandon, a writer left half-way (the build failed) may still
        # hand over what it had queued: dropped, so its thread never blocks.
        if not self._closed:
            self._chunks.put(chunk)

    def finish(self, *, stored_sha256: str) -> FirstSignature | None:
        """The signatures of everything given to ``update``, with the stored body's SHA-256."""
        self._end()
        if self._failure is not None:
            _not_signed(self._batch, self._failure)
            return None
        return FirstSignature(
            timestamp=self._timestamp,
            key_ids=tuple(self._signer.key_ids),
            signatures=tuple(self._signatures),
            stored_sha256=stored_sha256,
        )

    def abandon(self) -> None:
        self._end()

    def _end(self) -> None:
        if not self._closed:
            self._closed = True
            self._chunks.put(None)
            self._thread.join()

    def _read(self) -> Iterator[bytes]:
        while (chunk := self._chunks.get()) is not None:
            yield chunk
        self._ended = True

    def _run(self) -> None:
        try:
            self._signatures = self._signer.sign_chunks(
                msg_id=str(self._batch.pk), timestamp=self._timestamp, chunks=self._read()
            )
        except BaseException as exc:  # reported by finish
            self._failure = exc
        if not self._ended:
            # A signer that failed (or stopped reading) half-way: take the rest,
            # so the writer never blocks on a full queue.
            while self._chunks.get() is not None:
                pass


def _not_signed(batch: Batch, exc: BaseException) -> None:
    # Signing at build only saves the first attempt time; the send signs instead.
    logger.warning(
        "batch %s: not signed at build (%s); the send signs it", batch.pk, type(exc).__name__
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


def stored_body_sha256(stored: IO[bytes]) -> str:
    """SHA-256 (hex) of a stored body's bytes as stored (gzip), read from where ``stored`` is."""
    digest = hashlib.sha256()
    while piece := stored.read(READ_BYTES):
        digest.update(piece)
    return digest.hexdigest()


def _signed_at_send(feed: Feed) -> bool:
    """Whether ``feed``'s attempts carry a signature over the stored body's NDJSON as it is."""
    return feed.mode in (Feed.Mode.PUSH, Feed.Mode.STREAM) and sends_stored_body(feed)
