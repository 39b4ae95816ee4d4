"""The parts of a build: a body writer per part, each part stored (and signed) when it is full.

A feed with ``max_batch_events`` or ``max_batch_bytes`` gets a larger claim
in parts (``Batch``'s docstring); every other build is one part. Each part's body is stored as soon
as it is finished, so a build never holds more than one open body, and a push
body is signed for its first attempt while it is written
(``gateway.delivery.first_signature``). The batch of part 1 is the claim's
own; later parts get ids derived from it (``part_id``), so a build redone
after a crash writes the same body names again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.delivery.body import NO_LIMIT, Body, BodyWriter
from gateway.delivery.first_signature import FirstSignature, FirstSigning, first_signing_start
from gateway.delivery.models import Batch
from gateway.delivery.queueing import BatchId
from gateway.delivery.storage import body_name, body_save
from partners.models import Feed, FeedShape

if TYPE_CHECKING:
    from gateway.delivery.build import BuildTally
    from gateway.filedrop.parquet import ParquetBodyWriter


@dataclass(frozen=True)
class BuiltPart:
    """One body of a build, stored: what its batch row records."""

    batch: Batch  # the claim's batch for part 1, an unsaved one for each later part
    tally: BuildTally
    body_path: str
    body_sha256: str
    body_bytes: int
    first_signature: FirstSignature | None


def part_id(*, first: BatchId, part: int) -> uuid.UUID:
    """The id of part ``part`` (2, 3, ...) of batch ``first``'s build: the same at every build."""
    return uuid.uuid5(uuid.UUID(str(first)), f"part-{part}")


class BuildParts:
    """The parts of one build: a writer for the next, and each finished one stored.

    A push body is signed for its first attempt as it is written
    (``first_signing_start``): the signer is started with the part's writer.
    """

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.built: list[BuiltPart] = []
        # Only event bodies are cut into parts; an aggregate's rows all go in one.
        self._capped = batch.feed.shape == FeedShape.EVENTS
        self._current: Batch | None = None
        self._signing: FirstSigning | None = None

    def writer(self) -> BodyWriter | ParquetBodyWriter:
        """The writer of the next part."""
        self._current = _part_batch(self.batch, number=len(self.built) + 1)
        self._signing = first_signing_start(batch=self._current)
        tee = self._signing.update if self._signing else None
        return _body_writer(self.batch.feed, tee=tee, capped=self._capped)

    def store(self, tally: BuildTally, body: Body) -> None:
        """Store the body of the part ``writer`` last started, with its first signature."""
        part = self._current
        assert part is not None, "store follows writer"
        with closing(body):
            body_path = _body_store(batch=part, body=body) if tally.delivered else ""
        # Taken only now: should storing fail, abandon() lets the signer go.
        signing, self._signing = self._signing, None
        first_signature = None
        if signing is not None:
            if body_path:
                first_signature = signing.finish(stored_sha256=body.stored_sha256)
            else:
                signing.abandon()
        self.built.append(
            BuiltPart(
                batch=part,
                tally=tally,
                body_path=body_path,
                body_sha256=body.sha256 if tally.delivered else "",
                body_bytes=body.uncompressed_bytes if tally.delivered else 0,
                first_signature=first_signature,
            )
        )

    def abandon(self) -> None:
        """Let go of the signer of a part that will not be stored (the build failed)."""
        if self._signing is not None:
            self._signing.abandon()
            self._signing = None


def _part_batch(batch: Batch, *, number: int) -> Batch:
    """The batch of part ``number`` of ``batch``'s build: itself for part 1, else a new one."""
    if number == 1:
        return batch
    part = Batch(
        id=part_id(first=batch.pk, part=number),
        part=number,
        first_part=batch,
        **batch.claim_fields(),
    )
    part.feed = batch.feed  # already loaded, with its partner
    return part


def _body_store(*, batch: Batch, body: Body) -> str:
    return body_save(name=body_name(feed_id=batch.feed_id, batch_id=batch.pk), content=body.file)


def _body_writer(
    feed: Feed, *, tee: Callable[[bytes], None] | None = None, capped: bool = False
) -> BodyWriter | ParquetBodyWriter:
    """The writer of the feed's format: gzip NDJSON, or Parquet (file drops only).

    ``capped``: full at the feed's max_batch_events / max_batch_bytes (its
    ``write`` then returns False); aggregate bodies never are.
    """
    max_records = (capped and feed.max_batch_events) or NO_LIMIT
    if feed.format == Feed.Format.PARQUET and feed.mode == Feed.Mode.FILE:
        # Imported here: only Parquet feeds need pyarrow. A file drop signs its
        # manifest, never the body, so nothing is teed.
        from gateway.filedrop.parquet import writer_for_feed

        return writer_for_feed(feed, max_records=max_records)
    max_bytes = (capped and feed.max_batch_bytes) or NO_LIMIT
    return BodyWriter(tee=tee, max_records=max_records, max_bytes=max_bytes)
