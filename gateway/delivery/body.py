"""The NDJSON body of a batch, written straight into gzip, without Django.

Records are compressed as they arrive, so building a batch holds the
compressed output in memory, never the whole uncompressed window.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def ndjson_line(record: Mapping[str, Any]) -> bytes:
    """One compact JSON line with sorted keys: the same record always gives the same bytes."""
    text = json.dumps(record, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


@dataclass(frozen=True)
class Body:
    """A finished body: gzip bytes plus the size and SHA-256 of the uncompressed NDJSON."""

    gzip_bytes: bytes
    sha256: str
    uncompressed_bytes: int
    records: int


class BodyWriter:
    """Accumulates NDJSON records into a gzip buffer, hashing the uncompressed bytes."""

    def __init__(self, *, compresslevel: int = 6) -> None:
        self._buffer = io.BytesIO()
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
        return Body(
            gzip_bytes=self._buffer.getvalue(),
            sha256=self._sha256.hexdigest(),
            uncompressed_bytes=self._size,
            records=self._records,
        )
