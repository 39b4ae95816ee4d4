"""Bounded gunzip and NDJSON parsing of batch bodies."""

from __future__ import annotations

import gzip

import pytest

from gateway.simulator.bodies import BodyError, body_text, gunzip_limited, parse_ndjson


def test_gunzip_returns_the_original_bytes() -> None:
    assert gunzip_limited(gzip.compress(b"hello\n")) == b"hello\n"


def test_gunzip_reads_concatenated_members_as_one_stream() -> None:
    assert gunzip_limited(gzip.compress(b"a\n") + gzip.compress(b"b\n")) == b"a\nb\n"


def test_gunzip_stops_a_small_bomb_at_the_limit_with_413() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000

    with pytest.raises(BodyError) as caught:
        gunzip_limited(bomb, max_bytes=1_000_000)

    assert (caught.value.code, caught.value.status) == ("body_too_large", 413)


def test_gunzip_accepts_a_body_of_exactly_the_limit() -> None:
    assert len(gunzip_limited(gzip.compress(b"x" * 1000), max_bytes=1000)) == 1000


@pytest.mark.parametrize(
    "data", [b"plain text", gzip.compress(b"abc")[:-4], gzip.compress(b"abc") + b"junk", b""]
)
def test_gunzip_rejects_what_is_not_complete_gzip(data: bytes) -> None:
    with pytest.raises(BodyError) as caught:
        gunzip_limited(data)

    assert caught.value.code == "bad_gzip"


def test_body_text_rejects_bytes_that_are_not_utf8() -> None:
    with pytest.raises(BodyError, match="UTF-8"):
        body_text(b"\xff\xfe")


def test_parse_ndjson_skips_blank_lines_and_keeps_order() -> None:
    assert parse_ndjson('{"a": 1}\n\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize("text", ['{"a": 1}\n[1, 2]\n', "{broken\n", '"string"\n'])
def test_parse_ndjson_rejects_a_body_with_any_line_that_is_not_an_object(text: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_ndjson(text)

    assert caught.value.code == "bad_ndjson"
