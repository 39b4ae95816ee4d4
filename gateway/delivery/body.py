"""The NDJSON body of a batch, written straight into gzip on disk, without Django.

Records are compressed as they arrive into a temporary file, so building a
batch holds neither the uncompressed window nor its compressed output in
memory; ``gateway.delivery.storage`` then stores the file.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import orjson

_NDJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
# Bodies up to this size stay in memory before spilling to a temporary file.
SPOOL_BYTES = 1024 * 1024


def ndjson_line(record: Mapping[str, Any]) -> bytes:
    """One compact JSON line with sorted keys: the same record always gives the same bytes.

    orjson writes what ``json.dumps(record, separators=(",", ":"),
    sort_keys=True, ensure_ascii=False)`` writes for our records (strings,
    integers, booleans, finite floats), about eight times faster.
    """
    return orjson.dumps(record, option=_NDJSON_OPTIONS)


@dataclass(frozen=True)
class Body:
    """A finished body: an open gzip file plus the size and SHA-256 of the uncompressed NDJSON.

    The file is a temporary one: it disappears when closed.
    """

    file: IO[bytes]
    sha256: str
    uncompressed_bytes: int
    records: int

    def read_gzip(self) -> bytes:
        """The whole compressed body (small bodies and tests only)."""
        self.file.seek(0)
        return self.file.read()

    def close(self) -> None:
        self.file.close()


class BodyWriter:
    """Streams NDJSON records into a gzip temporary file, hashing the uncompressed bytes."""

    def __init__(self, *, compresslevel: int = 6) -> None:
        self._buffer: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        # mtime=0 keeps the gzip header free of the build time: a rebuild of the
        # same records gives byte-identical output.
        self._gzip = gzip.GzipFile(
            fileobj=self._buffer, mode="wb", compresslevel=compresslevel, mtime=0
        )
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._records = 0

    def write(self, record: Mapping[str, Any]) -> None:
        line = ndjson_line(record)
        self._gzip.write(line)
        self._sha256.update(line)
        self._size += len(line)
        self._records += 1

    def finish(self) -> Body:
        self._gzip.close()
        self._buffer.seek(0)
        return Body(
            file=self._buffer,
            sha256=self._sha256.hexdigest(),
            uncompressed_bytes=self._size,
            records=self._records,
        )
