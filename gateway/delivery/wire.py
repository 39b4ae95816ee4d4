"""What a batch body looks like on the wire, for pushes and pull downloads alike.

Plain feeds send the stored gzip body with ``Content-Encoding: gzip`` (or the
NDJSON itself), and the signature covers the NDJSON, which the reference
Standard Webhooks libraries need as text. Encrypted feeds send the JWE compact
serialisation of the gzip body (``gateway.delivery.encryption``), signed as
sent, so a partner verifies before it decrypts.

The NDJSON a gzip body's signature covers is handed out in pieces
(``WireBody.signed_chunks``), inflated on another thread while the caller
hashes the previous piece: the body is never held inflated in memory (a window
batch of a million exposures is half a gigabyte of NDJSON), and inflating
overlaps hashing instead of preceding it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from gzip import BadGzipFile
from typing import IO, BinaryIO

from isal import igzip, igzip_threaded
from isal.igzip_lib import IsalError

from gateway.delivery.encryption import JOSE_CONTENT_TYPE, EncryptionError, encrypt_body
from gateway.delivery.storage import body_open
from gateway.errors import DeliveryError
from partners.models import Feed

NDJSON_CONTENT_TYPE = "application/x-ndjson"
GZIP_ENCODING = "gzip"
# What inflating a damaged gzip body raises: a bad header or CRC (BadGzipFile),
# a stream cut short (EOFError), invalid deflate data (IsalError).
DAMAGED_BODY_ERRORS: tuple[type[Exception], ...] = (BadGzipFile, EOFError, IsalError)
# Pieces of the inflated NDJSON: big enough that hashing releases the GIL for
# long stretches, small enough to stay in the CPU cache.
SIGNED_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class WireBody:
    """The bytes to send, what the signature covers, and the content headers."""

    content: bytes
    content_type: str
    content_encoding: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.content_encoding:
            headers["Content-Encoding"] = self.content_encoding
        return headers

    def signed_chunks(self) -> Iterator[bytes]:
        """What the signature covers, in order: the content as sent, less its gzip encoding."""
        if self.content_encoding == GZIP_ENCODING:
            yield from inflated_chunks(self.content)
        else:
            yield self.content


def inflated_chunks(compressed: bytes | BinaryIO) -> Iterator[bytes]:
    """The content of gzip ``compressed`` (bytes or a file) in pieces, inflated one piece ahead."""
    source = io.BytesIO(compressed) if isinstance(compressed, bytes) else compressed
    with igzip_threaded.open(source, "rb", threads=1, block_size=SIGNED_CHUNK_BYTES) as plain:
        while chunk := plain.read(SIGNED_CHUNK_BYTES):
            yield chunk


@dataclass(frozen=True)
class OutgoingBody:
    """A body to send: bytes made for it, or (``content`` None) the stored body as it is.

    The stored body is opened only by ``opened``, so the largest window goes
    out from storage without ever being held.
    """

    body_path: str
    content: bytes | None = None

    @contextmanager
    def opened(self) -> Iterator[bytes | IO[bytes]]:
        """The bytes, or the stored file (closed afterwards)."""
        if self.content is not None:
            yield self.content
            return
        with body_open(self.body_path) as stored:
            yield stored


def sent_as_stored(feed: Feed) -> bool:
    """Does ``feed`` send the stored gzip body byte for byte (so it can stream from storage)?"""
    return feed.encryption == Feed.Encryption.NONE and feed.gzip


def stored_body_headers() -> dict[str, str]:
    """The content headers of a body sent as stored: gzip NDJSON."""
    return {"Content-Type": NDJSON_CONTENT_TYPE, "Content-Encoding": GZIP_ENCODING}


def wire_body(*, feed: Feed, compressed: bytes) -> WireBody:
    """The wire form of a stored gzip body for ``feed``.

    Raises a permanent DeliveryError when the feed's key cannot encrypt: a
    body is never sent in clear to a feed that asked for encryption.
    """
    if feed.encryption != Feed.Encryption.NONE:
        try:
            token = encrypt_body(
                compressed,
                scheme=feed.encryption,
                public_key_pem=feed.encryption_public_key,
                key_id=feed.encryption_key_id,
            )
        except EncryptionError as exc:
            raise DeliveryError(f"cannot encrypt the body: {exc}", transient=False) from exc
        return WireBody(content=token, content_type=JOSE_CONTENT_TYPE)
    if sent_as_stored(feed):
        return WireBody(
            content=compressed,
            content_type=NDJSON_CONTENT_TYPE,
            content_encoding=GZIP_ENCODING,
        )
    # Sent as NDJSON, so it is inflated whole anyway. ISA-L inflates about
    # twice as fast as zlib, and lets other threads run meanwhile.
    return WireBody(content=igzip.decompress(compressed), content_type=NDJSON_CONTENT_TYPE)
