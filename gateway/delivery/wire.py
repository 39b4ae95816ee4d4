"""What a batch body looks like on the wire, for pushes and pull downloads alike.

Plain feeds send the stored gzip body with ``Content-Encoding: gzip`` (or the
NDJSON itself), and the signature covers the NDJSON, which the reference
Standard Webhooks libraries need as text. Encrypted feeds send the JWE compact
serialisation of the gzip body (``gateway.delivery.encryption``), signed as
sent, so a partner verifies before it decrypts.

A gzip body is never held: it is sent from storage (``WireBody.opened``), and
the NDJSON its signature covers is handed out in pieces
(``WireBody.signed_chunks``), inflated from storage on another thread while
the caller hashes the previous piece (a window batch of a million exposures
is half a gigabyte of NDJSON), so inflating overlaps hashing instead of
preceding it.
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
from gateway.delivery.storage import body_open, body_read
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
    """A body as it goes out: its bytes, what its signature covers, and its content headers.

    ``content`` is None when the stored gzip body goes as it is: ``opened``
    and ``signed_chunks`` then read it from storage, so the largest window
    goes out without ever being held, inflated or not.
    """

    body_path: str
    content_type: str
    content_encoding: str | None = None
    content: bytes | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.content_encoding:
            headers["Content-Encoding"] = self.content_encoding
        return headers

    @contextmanager
    def opened(self) -> Iterator[bytes | IO[bytes]]:
        """The bytes to send, or the stored file (closed afterwards)."""
        if self.content is not None:
            yield self.content
            return
        with body_open(self.body_path) as stored:
            yield stored

    def signed_chunks(self) -> Iterator[bytes]:
        """What the signature covers, in order: the body as sent, less its gzip encoding."""
        if self.content is not None:
            yield self.content
            return
        with body_open(self.body_path) as stored:
            yield from inflated_chunks(stored)


def inflated_chunks(compressed: bytes | BinaryIO) -> Iterator[bytes]:
    """The content of gzip ``compressed`` (bytes or a file) in pieces, inflated one piece ahead."""
    source = io.BytesIO(compressed) if isinstance(compressed, bytes) else compressed
    with igzip_threaded.open(source, "rb", threads=1, block_size=SIGNED_CHUNK_BYTES) as plain:
        while chunk := plain.read(SIGNED_CHUNK_BYTES):
            yield chunk


def wire_body(*, feed: Feed, body_path: str) -> WireBody:
    """The wire form, for ``feed``, of the gzip body stored at ``body_path``.

    Only encrypted and uncompressed feeds read the body here (a JWE and the
    NDJSON are made whole); a gzip feed's body is read when it is sent.
    Raises a permanent DeliveryError when the feed's key cannot encrypt: a
    body is never sent in clear to a feed that asked for encryption.
    """
    if feed.encryption != Feed.Encryption.NONE:
        try:
            token = encrypt_body(
                body_read(body_path),
                scheme=feed.encryption,
                public_key_pem=feed.encryption_public_key,
                key_id=feed.encryption_key_id,
            )
        except EncryptionError as exc:
            raise DeliveryError(f"cannot encrypt the body: {exc}", transient=False) from exc
        return WireBody(body_path=body_path, content_type=JOSE_CONTENT_TYPE, content=token)
    if feed.gzip:
        return WireBody(
            body_path=body_path,
            content_type=NDJSON_CONTENT_TYPE,
            content_encoding=GZIP_ENCODING,
        )
    # ISA-L inflates about twice as fast as zlib, and lets other threads run meanwhile.
    return WireBody(
        body_path=body_path,
        content_type=NDJSON_CONTENT_TYPE,
        content=igzip.decompress(body_read(body_path)),
    )
