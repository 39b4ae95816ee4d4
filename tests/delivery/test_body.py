"""The NDJSON body: compact, deterministic lines, gzip-compressed as they are written."""

from __future__ import annotations

import gzip
import hashlib
import json

from gateway.delivery.body import BodyWriter, ndjson_line


def test_a_line_is_compact_json_with_sorted_keys_and_a_newline():
    assert ndjson_line({"b": 1, "a": {"d": [1, 2], "c": None}}) == (
        b'{"a":{"c":null,"d":[1,2]},"b":1}\n'
    )


def test_non_ascii_text_is_written_as_utf8_not_escaped():
    assert ndjson_line({"city": "Zürich"}) == '{"city":"Zürich"}\n'.encode()


def test_the_body_decompresses_to_one_record_per_line():
    writer = BodyWriter()
    records = [{"event_id": f"evt-{n}", "n": n} for n in range(3)]
    for record in records:
        writer.write(record)

    body = writer.finish()

    lines = gzip.decompress(body.read_gzip()).splitlines()
    assert [json.loads(line) for line in lines] == records
    assert body.records == 3


def test_size_and_sha256_describe_the_uncompressed_bytes():
    writer = BodyWriter()
    writer.write({"a": 1})
    writer.write({"b": 2})

    body = writer.finish()

    plain = gzip.decompress(body.read_gzip())
    assert plain == b'{"a":1}\n{"b":2}\n'
    assert body.uncompressed_bytes == len(plain)
    assert body.sha256 == hashlib.sha256(plain).hexdigest()


def test_the_same_records_give_byte_identical_gzip_output():
    def build() -> bytes:
        writer = BodyWriter()
        writer.write({"z": 1, "a": 2})
        return writer.finish().read_gzip()

    assert build() == build()


def test_an_empty_body_is_valid_gzip_of_nothing():
    body = BodyWriter().finish()

    assert gzip.decompress(body.read_gzip()) == b""
    assert body.records == 0
    assert body.sha256 == hashlib.sha256(b"").hexdigest()
