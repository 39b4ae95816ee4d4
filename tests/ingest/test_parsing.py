"""Request framing: gateway.ingest.parsing (content negotiation, gzip, JSON array, NDJSON)."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from gateway.errors import InvalidRequest, MalformedBody, PayloadTooLarge, UnsupportedMediaType
from gateway.ingest.parsing import (
    BodyFormat,
    body_format_negotiate,
    gunzip_bounded,
    json_array_parse,
    ndjson_parse,
    records_parse,
)
from gateway.ingest.validation import InvalidJson

ARRAY = BodyFormat(ndjson=False, gzip=False)
NDJSON = BodyFormat(ndjson=True, gzip=False)


def _parse(body: bytes, body_format: BodyFormat = ARRAY, max_events: int = 100) -> list:
    return records_parse(
        body=body, body_format=body_format, max_decompressed_bytes=10_000, max_events=max_events
    )


# --- Content negotiation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "content_encoding", "expected"),
    [
        ("application/json", "", BodyFormat(ndjson=False, gzip=False)),
        ("application/json; charset=utf-8", "gzip", BodyFormat(ndjson=False, gzip=True)),
        ('Application/JSON;charset="UTF-8"', "identity", BodyFormat(ndjson=False, gzip=False)),
        ("application/x-ndjson", "GZIP", BodyFormat(ndjson=True, gzip=True)),
    ],
)
def test_json_and_ndjson_with_or_without_gzip_are_recognised(
    content_type: str, content_encoding: str, expected: BodyFormat
) -> None:
    assert (
        body_format_negotiate(content_type=content_type, content_encoding=content_encoding)
        == expected
    )


@pytest.mark.parametrize(
    ("content_type", "content_encoding", "code"),
    [
        ("", "", "unsupported_content_type"),
        ("text/plain", "", "unsupported_content_type"),
        ("application/x-www-form-urlencoded", "", "unsupported_content_type"),
        ("application/jsonl", "", "unsupported_content_type"),
        ("application/json; charset=latin-1", "", "unsupported_charset"),
        ("application/json", "br", "unsupported_content_encoding"),
        ("application/json", "deflate", "unsupported_content_encoding"),
        ("application/json", "gzip, gzip", "unsupported_content_encoding"),
    ],
)
def test_other_content_types_charsets_and_encodings_are_unsupported(
    content_type: str, content_encoding: str, code: str
) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        body_format_negotiate(content_type=content_type, content_encoding=content_encoding)

    assert caught.value.status == 415
    assert caught.value.code == code


# --- gzip ---------------------------------------------------------------------------


def test_gzip_is_inflated() -> None:
    assert gunzip_bounded(gzip.compress(b"[1, 2]"), max_bytes=100) == b"[1, 2]"


def test_concatenated_gzip_members_are_one_stream() -> None:
    data = gzip.compress(b'{"a": 1}\n') + gzip.compress(b'{"b": 2}\n')

    assert gunzip_bounded(data, max_bytes=100) == b'{"a": 1}\n{"b": 2}\n'


def test_a_body_that_inflates_to_exactly_the_limit_is_accepted() -> None:
    assert len(gunzip_bounded(gzip.compress(b"x" * 5000), max_bytes=5000)) == 5000


def test_a_gzip_bomb_is_stopped_once_it_passes_the_limit() -> None:
    # 64 MiB of zeros compresses to about 64 KiB.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    bomb = b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()
    assert len(bomb) < 100 * 1024

    with pytest.raises(PayloadTooLarge) as caught:
        gunzip_bounded(bomb, max_bytes=1024 * 1024)

    assert caught.value.code == "decompressed_body_too_large"
    assert caught.value.extra == {"max_bytes": 1024 * 1024}


@pytest.mark.parametrize(
    "data",
    [
        b"[1, 2]",  # not compressed at all
        gzip.compress(b"[1, 2]")[:-6],  # truncated inside the trailer
        gzip.compress(b"[1, 2]" * 100)[:20],  # truncated inside the data
        gzip.compress(b"[1, 2]") + b"trailing garbage",
        zlib.compress(b"[1, 2]"),  # zlib framing is "deflate", not gzip
    ],
)
def test_invalid_gzip_is_a_malformed_body(data: bytes) -> None:
    with pytest.raises(MalformedBody) as caught:
        gunzip_bounded(data, max_bytes=10_000)

    assert caught.value.status == 400
    assert caught.value.code == "invalid_gzip"


def test_records_are_parsed_from_a_gzipped_body() -> None:
    body = gzip.compress(b'[{"event_id": "a"}]')

    records = _parse(body, BodyFormat(ndjson=False, gzip=True))

    assert records == [{"event_id": "a"}]


# --- JSON array ------------------------------------------------------------------------


def test_a_json_array_gives_its_elements_as_records() -> None:
    assert json_array_parse(b'[{"a": 1}, 2, "three"]', max_events=10) == [{"a": 1}, 2, "three"]


@pytest.mark.parametrize(
    "body",
    [
        b"[{",
        b'[{"a": 1},]',
        b"not json",
        b'[{"lat": NaN}]',
        b'[{"lat": Infinity}]',
        b'["\xff"]',
        b"\xef\xbb\xbf[1]",  # a byte-order mark is not JSON
        b"[" * 100_000 + b"]" * 100_000,  # nesting past the parser's recursion limit
    ],
)
def test_a_json_body_that_does_not_parse_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody) as caught:
        json_array_parse(body, max_events=10)

    assert caught.value.code == "malformed_body"


@pytest.mark.parametrize("body", [b'{"event_id": "a"}', b"42", b'"[]"', b"null"])
def test_a_top_level_value_other_than_an_array_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody, match="must be a JSON array"):
        json_array_parse(body, max_events=10)


def test_an_array_longer_than_the_event_limit_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        json_array_parse(json.dumps([{}] * 4).encode(), max_events=3)

    assert caught.value.code == "too_many_events"
    assert caught.value.extra == {"max_events": 3}
    assert json_array_parse(json.dumps([{}] * 3).encode(), max_events=3) == [{}] * 3


@pytest.mark.parametrize(
    ("body", "body_format", "code"),
    [
        (b"", ARRAY, "empty_body"),
        (b"", NDJSON, "empty_body"),
        (b"[]", ARRAY, "empty_batch"),
        (b"  [ ]  ", ARRAY, "empty_batch"),
        (b"\n\n  \r\n", NDJSON, "empty_batch"),
        (gzip.compress(b""), BodyFormat(ndjson=False, gzip=True), "empty_body"),
    ],
)
def test_an_empty_body_or_batch_is_an_invalid_request(
    body: bytes, body_format: BodyFormat, code: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _parse(body, body_format)

    assert caught.value.status == 400
    assert caught.value.code == code


# --- NDJSON --------------------------------------------------------------------------


def test_each_ndjson_line_is_a_record_and_blank_lines_are_ignored() -> None:
    body = b'{"a": 1}\n\n   \n{"b": 2}\r\n[3]\n'

    assert ndjson_parse(body, max_events=10) == [{"a": 1}, {"b": 2}, [3]]


def test_an_ndjson_line_that_is_not_json_stays_in_place_as_invalid_json() -> None:
    body = b'{"a": 1}\n{"b": \n\n{"c": NaN}\n\xff\xfe\n' + b"[" * 100_000 + b'\n{"d": 4}'

    records = ndjson_parse(body, max_events=10)

    assert records[0] == {"a": 1}
    assert records[5] == {"d": 4}
    assert all(isinstance(r, InvalidJson) for r in records[1:5])
    assert "not valid JSON" in records[1].detail


def test_ndjson_with_more_lines_than_the_event_limit_is_too_large() -> None:
    body = b"{}\n" * 4

    with pytest.raises(PayloadTooLarge) as caught:
        ndjson_parse(body, max_events=3)

    assert caught.value.code == "too_many_events"
    # Blank lines do not count towards the limit.
    assert len(ndjson_parse(b"{}\n\n\n{}\n\n{}\n", max_events=3)) == 3
