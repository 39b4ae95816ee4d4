"""Decoding of batch bodies: bounded gunzip and NDJSON parsing."""

from __future__ import annotations

import json
import zlib
from typing import Any

# A real partner caps what it accepts; 100 MB is far above any batch the
# gateway builds and low enough that a runaway body cannot exhaust memory.
MAX_BODY_BYTES = 100 * 1024 * 1024


class BodyError(ValueError):
    """A body that cannot be decoded; ``code`` is machine-readable, ``status`` the HTTP answer."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def gunzip_limited(data: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """Decompress gzip (one or more members), refusing output beyond ``max_bytes``.

    Decompressing in one call would let a small "zip bomb" allocate gigabytes
    before any size check, so the output is bounded as it is produced.
    """
    output = bytearray()
    remaining = data
    while True:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            output += decompressor.decompress(remaining, max_bytes + 1 - len(output))
        except zlib.error as exc:
            raise BodyError(f"body is not valid gzip: {exc}", code="bad_gzip") from exc
        if len(output) > max_bytes:
            raise BodyError(
                f"decompressed body exceeds {max_bytes} bytes", code="body_too_large", status=413
            )
        if not decompressor.eof:
            raise BodyError("gzip body is truncated", code="bad_gzip")
        # Concatenated gzip members are one valid gzip stream (RFC 1952).
        remaining = decompressor.unused_data
        if not remaining:
            return bytes(output)


def body_text(data: bytes) -> str:
    """The body as text; NDJSON is UTF-8 and signatures are computed over that text."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError("body is not UTF-8", code="bad_encoding") from exc


def parse_ndjson(text: str) -> list[dict[str, Any]]:
    """One JSON object per non-empty line; any other line makes the whole body invalid."""
    records: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BodyError(f"line {number} is not JSON: {exc.msg}", code="bad_ndjson") from exc
        if not isinstance(record, dict):
            raise BodyError(f"line {number} is not a JSON object", code="bad_ndjson")
        records.append(record)
    return records
