"""The NDJSON body: compact, deterministic lines, gzip-compressed as they are written."""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import threading

import pytest

from gateway.delivery.body import CHUNK_BYTES, BodyWriter, ndjson_line


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


def test_the_stored_sha256_is_that_of_the_gzip_file_written():
    writer = BodyWriter()
    writer.write({"a": 1})

    body = writer.finish()

    assert body.stored_sha256 == hashlib.sha256(body.read_gzip()).hexdigest()


def test_a_full_body_refuses_a_record_and_writes_nothing_of_it():
    by_count = BodyWriter(max_records=2)
    assert [by_count.write({"n": n}) for n in range(3)] == [True, True, False]
    # {"n":0}\n is 8 bytes: two fit in 17, a third would make 24.
    by_size = BodyWriter(max_bytes=17)
    assert [by_size.write({"n": n}) for n in range(3)] == [True, True, False]

    for writer in (by_count, by_size):
        body = writer.finish()
        assert gzip.decompress(body.read_gzip()) == b'{"n":0}\n{"n":1}\n'
        assert body.records == 2


def test_the_first_record_is_taken_whatever_its_size():
    writer = BodyWriter(max_bytes=4)

    assert writer.write({"large": "x" * 100})
    assert not writer.write({"n": 1})
    assert writer.finish().records == 1


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


def test_a_large_body_spans_many_chunks_and_keeps_its_order():
    writer = BodyWriter()
    records = [{"event_id": f"evt-{n:06d}", "pad": "x" * 200} for n in range(5_000)]
    for record in records:
        writer.write(record)

    body = writer.finish()

    plain = gzip.decompress(body.read_gzip())
    assert body.uncompressed_bytes == len(plain) > 4 * CHUNK_BYTES
    assert [json.loads(line) for line in plain.splitlines()] == records
    assert body.sha256 == hashlib.sha256(plain).hexdigest()


def test_a_failure_while_compressing_reaches_the_writer(monkeypatch: pytest.MonkeyPatch):
    writer = BodyWriter()

    def broken(data: bytes) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr(writer._compression, "_compressor", type("Z", (), {"compress": broken}))
    writer.write({"pad": "x" * CHUNK_BYTES})

    with pytest.raises(OSError, match="disk full"):
        writer.finish()


def test_a_writer_dropped_half_way_stops_its_thread():
    before = {t for t in threading.enumerate() if t.name == "body-gzip"}
    writer = BodyWriter()
    writer.write({"a": 1})
    thread = next(t for t in threading.enumerate() if t.name == "body-gzip" and t not in before)

    del writer
    gc.collect()

    thread.join(timeout=5)
    assert not thread.is_alive()
