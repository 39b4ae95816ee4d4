"""What a batch body looks like on the wire, for pushes and pull downloads alike.

Plain feeds send the stored gzip body with ``Content-Encoding: gzip`` (or the
NDJSON itself), and the signature covers the NDJSON, which the reference
Standard Webhooks libraries need as text. Encrypted feeds send the JWE compact
serialisation of the gzip body (``gateway.delivery.encryption``), signed as
sent, so a partner verifies before it decrypts.

No body is ever held whole (a window batch of a million exposures is about
100 MB of gzip and half a gigabyte of NDJSON). A gzip body is sent from
storage (``WireBody.opened``), and the NDJSON its signature covers is handed
out in pieces (``WireBody.signed_chunks``), inflated from storage on another
thread while the caller hashes the previous piece, so inflating overlaps
hashing instead of preceding it. A JWE or an uncompressed body is written in
pieces to a temporary file (in memory up to ``SPOOL_MEMORY_BYTES``), which is
then sent and signed from there.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from gzip import BadGzipFile
from typing import IO, Protocol

from isal import igzip_threaded
from isal.igzip_lib import IsalError

from gateway.delivery.encryption import (
    DEFAULT_CTY,
    JOSE_CONTENT_TYPE,
    EncryptionError,
    encrypt_stream,
)
from gateway.delivery.storage import body_open
from gateway.delivery.transport import ReadableBody
from gateway.errors import DeliveryError
from partners.models import Feed

NDJSON_CONTENT_TYPE = "application/x-ndjson"
GZIP_ENCODING = "gzip"
# What inflating a damaged gzip body raises: a bad header or CRC (BadGzipFile),
# a stream cut short (EOFError), invalid deflate data (IsalError).
# (isal's stubs declare IsalError an instance; it is a class.)
DAMAGED_BODY_ERRORS: tuple[type[Exception], ...] = (BadGzipFile, EOFError, IsalError)  # type: ignore[assignment]
# Pieces of the inflated NDJSON: big enough that hashing releases the GIL for
# long stretches, small enough to stay in the CPU cache.
SIGNED_CHUNK_BYTES = 256 * 1024
# A body made for the wire (a JWE, uncompressed NDJSON) stays in memory up to
# this size, then goes to a temporary file (see operations.md, disk).
SPOOL_MEMORY_BYTES = 1024 * 1024


class Hasher(Protocol):
    """What ``wire_body`` feeds the NDJSON to (``hashlib.sha256()``, say)."""

    def update(self, data: bytes, /) -> None: ...


@dataclass(frozen=True)
class WireBody:
    """A body as it goes out: its bytes, what its signature covers, and its content headers.

    ``made`` is the body made for the wire (a JWE, or the NDJSON) in a
    temporary file, which ``close`` deletes; None when the stored gzip body
    goes as it is. ``stored``, if given, is the stored body already open
    (``StoredBody``): every read rewinds it instead of opening storage
    again, so an attempt that checks or signs the body and then sends it
    downloads it from S3 once; ``close`` closes it.
    """

    body_path: str
    content_type: str
    content_encoding: str | None = None
    made: IO[bytes] | None = None
    stored: StoredBody | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.content_encoding:
            headers["Content-Encoding"] = self.content_encoding
        return headers

    @contextmanager
    def opened(self) -> Iterator[IO[bytes] | SizedReader]:
        """The body to send, from its start, with its size; a stored body is closed afterwards."""
        if self.made is None:
            with _stored_open(self.body_path, self.stored) as stored:
                yield stored
            return
        yield SizedReader(self.made)

    def file(self) -> IO[bytes]:
        """The body as a file at its start, for the caller to close (a response streams it)."""
        if self.made is None:
            return body_open(self.body_path)
        self.made.seek(0)
        return self.made

    def signed_chunks(self) -> Iterator[bytes]:
        """What the signature covers, in order: the body as sent, less its gzip encoding."""
        if self.made is None:
            with _stored_open(self.body_path, self.stored) as stored:
                yield from inflated_chunks(stored)
            return
        self.made.seek(0)
        while chunk := self.made.read(SIGNED_CHUNK_BYTES):
            yield chunk

    def close(self) -> None:
        if self.made is not None:
            self.made.close()
        if self.stored is not None:
            self.stored.close()


class StoredBody:
    """A stored body opened once for several reads (``rewound``), then closed.

    Opened lazily, so a WireBody that never reads it costs nothing.
    """

    def __init__(self, body_path: str) -> None:
        self.body_path = body_path
        self._file: IO[bytes] | None = None

    def rewound(self) -> IO[bytes]:
        """The stored body at its start (opened on first use); the caller does not close it."""
        if self._file is None:
            self._file = body_open(self.body_path)
        else:
            self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@contextmanager
def _stored_open(body_path: str, stored: StoredBody | None) -> Iterator[IO[bytes]]:
    """The stored body from its start: ``stored`` rewound, or opened here and closed after."""
    if stored is not None:
        yield stored.rewound()
        return
    with body_open(body_path) as opened:
        yield opened


class SizedReader:
    """A file read from its start that knows its size, so ``requests`` sends a Content-Length.

    Given the file itself, requests would ask for its descriptor to learn the
    size, which moves a temporary file held in memory to disk.
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        file.seek(0, io.SEEK_END)
        self._size = file.tell()
        file.seek(0)

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)


def inflated_chunks(compressed: bytes | ReadableBody) -> Iterator[bytes]:
    """The content of gzip ``compressed`` (bytes or a file) in pieces, inflated one piece ahead."""
    source = io.BytesIO(compressed) if isinstance(compressed, bytes) else compressed
    with igzip_threaded.open(source, "rb", threads=1, block_size=SIGNED_CHUNK_BYTES) as plain:
        while chunk := plain.read(SIGNED_CHUNK_BYTES):
            yield chunk


def sends_stored_body(feed: Feed) -> bool:
    """Whether ``feed``'s body goes out as stored (gzip NDJSON), not made anew for the wire."""
    return feed.encryption == Feed.Encryption.NONE and feed.gzip


def wire_body(
    *,
    feed: Feed,
    body_path: str,
    ndjson_digest: Hasher | None = None,
    stored: StoredBody | None = None,
) -> WireBody:
    """The wire form, for ``feed``, of the gzip body stored at ``body_path``.

    A gzip feed's body is read only when it is sent; a JWE or the NDJSON is
    written to a temporary file here, in pieces, after one pass over the
    NDJSON, which also feeds ``ndjson_digest`` if given (a made body only:
    the caller digests a stored one as it reads it). ``stored``, the body
    already open, is read instead of opening storage, and kept (and closed)
    by the WireBody. Raises a permanent DeliveryError when the feed's key
    cannot encrypt: a body is never sent in clear to a feed that asked for
    encryption.
    """
    if sends_stored_body(feed):
        return WireBody(
            body_path=body_path,
            content_type=NDJSON_CONTENT_TYPE,
            content_encoding=GZIP_ENCODING,
            stored=stored,
        )
    made = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 (WireBody.close)
    # Uncompressed, the NDJSON is what is sent; encrypted, the pass checks the
    # gzip CRC first (encrypting does not inflate), so a damaged body is never
    # sent (DAMAGED_BODY_ERRORS) in any form.
    keep = made.write if feed.encryption == Feed.Encryption.NONE else None
    # Read twice when encrypting (inflated, then as stored): opened once.
    source = stored if stored is not None else StoredBody(body_path)
    try:
        for chunk in inflated_chunks(source.rewound()):
            if ndjson_digest is not None:
                ndjson_digest.update(chunk)
            if keep is not None:
                keep(chunk)
        if keep is not None:
            return WireBody(body_path=body_path, content_type=NDJSON_CONTENT_TYPE, made=made)
        encrypt_stream(
            source.rewound(),
            made,
            scheme=feed.encryption,
            public_key_pem=feed.encryption_public_key,
            key_id=feed.encryption_key_id,
            content_type=DEFAULT_CTY,
        )
        return WireBody(body_path=body_path, content_type=JOSE_CONTENT_TYPE, made=made)
    except EncryptionError as exc:
        made.close()
        raise DeliveryError(f"cannot encrypt the body: {exc}", transient=False) from exc
    except BaseException:
        made.close()
        raise
    finally:
        # The body made for the wire is what goes out from here on.
        source.close()
