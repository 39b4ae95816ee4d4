"""From request headers and body bytes to a list of records. Pure: no Django import.

Two framings are accepted: a JSON array (``application/json``) and NDJSON
(``application/x-ndjson``, one record per line), optionally gzip-compressed.
Every limit is enforced while the data is produced, never after: a gzip bomb is
stopped once it has inflated past the limit, and an NDJSON body with too many
lines is refused before the lines are parsed.

A JSON array that does not parse fails as a whole; in NDJSON only the bad line
does, and it stays in the batch as an ``InvalidJson`` row so the client learns
its index.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequest, MalformedBody, PayloadTooLarge, UnsupportedMediaType
from gateway.ingest.validation import InvalidJson

JSON = "application/json"
NDJSON = "application/x-ndjson"
GZIP = "gzip"
_UTF8 = ("utf-8", "utf8")

# Inflate in steps of this many output bytes, so memory follows the limit, not the bomb.
_INFLATE_STEP = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BodyFormat:
    """How a body is framed and whether it is gzip-compressed."""

    ndjson: bool
    gzip: bool


def body_format_negotiate(*, content_type: str, content_encoding: str) -> BodyFormat:
    """The format the headers announce, or UnsupportedMediaType (415)."""
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in (JSON, NDJSON):
        raise UnsupportedMediaType(
            f"Content-Type must be {JSON} or {NDJSON}, not {media_type or 'missing'!r}.",
            code="unsupported_content_type",
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            raise UnsupportedMediaType(
                "The body must be UTF-8 encoded.", code="unsupported_charset"
            )
    encoding = content_encoding.strip().lower()
    if encoding not in ("", "identity", GZIP):
        raise UnsupportedMediaType(
            f"Content-Encoding must be {GZIP} or absent, not {encoding!r}.",
            code="unsupported_content_encoding",
        )
    return BodyFormat(ndjson=media_type == NDJSON, gzip=encoding == GZIP)


def records_parse(
    *, body: bytes, body_format: BodyFormat, max_decompressed_bytes: int, max_events: int
) -> list[Any]:
    """The records of a request body: JSON values, or InvalidJson for bad NDJSON lines."""
    if body and body_format.gzip:
        body = gunzip_bounded(body, max_bytes=max_decompressed_bytes)
    if not body:
        raise InvalidRequest("The request body is empty.", code="empty_body")
    if body_format.ndjson:
        records = ndjson_parse(body, max_events=max_events)
    else:
        records = json_array_parse(body, max_events=max_events)
    if not records:
        raise InvalidRequest("The batch holds no records.", code="empty_batch")
    return records


def gunzip_bounded(data: bytes, *, max_bytes: int) -> bytes:
    """``data`` inflated, refusing (413) to produce more than ``max_bytes``.

    Several concatenated gzip members are one valid gzip stream (RFC 1952),
    as produced by streaming compressors, so they are all inflated.
    """
    out = bytearray()
    pending = data
    try:
        while pending:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while not inflater.eof:
                room = max_bytes + 1 - len(out)
                chunk = inflater.decompress(pending, min(room, _INFLATE_STEP))
                pending = inflater.unconsumed_tail
                if not chunk and not pending and not inflater.eof:
                    raise MalformedBody("The gzip stream is truncated.", code="invalid_gzip")
                out += chunk
                if len(out) > max_bytes:
                    raise PayloadTooLarge(
                        f"The body inflates to more than {max_bytes} bytes.",
                        code="decompressed_body_too_large",
                        max_bytes=max_bytes,
                    )
            pending = inflater.unused_data
    except zlib.error as exc:
        raise MalformedBody(f"The body is not valid gzip: {exc}.", code="invalid_gzip") from exc
    return bytes(out)


def json_array_parse(data: bytes, *, max_events: int) -> list[Any]:
    """The elements of a JSON array body; anything else is malformed_body (400)."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; absurd nesting
    # ("[[[[...") exhausts the parser's recursion limit instead.
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(value, list):
        raise MalformedBody("The body must be a JSON array of records.")
    if len(value) > max_events:
        raise _too_many(max_events)
    return value


def ndjson_parse(data: bytes, *, max_events: int) -> list[Any]:
    """One record per non-blank line; a line that is not JSON becomes InvalidJson."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    if len(lines) > max_events:
        raise _too_many(max_events)
    records: list[Any] = []
    for line in lines:
        try:
            records.append(json.loads(line.decode("utf-8"), parse_constant=_reject_constant))
        except (ValueError, RecursionError) as exc:
            records.append(InvalidJson(detail=f"The line is not valid JSON: {exc}."))
    return records


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and neither do we.
    raise ValueError(f"{name} is not a JSON value")


def _too_many(max_events: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"A request may carry at most {max_events} records; split the batch.",
        code="too_many_events",
        max_events=max_events,
    )
