"""The wire form of a batch body, and the NDJSON its signature covers, handed out in pieces."""

from __future__ import annotations

import gzip
import io
import os
import threading
import uuid
import zlib

import pytest

from gateway.delivery.storage import body_read, body_save
from gateway.delivery.wire import (
    GZIP_ENCODING,
    NDJSON_CONTENT_TYPE,
    SIGNED_CHUNK_BYTES,
    inflated_chunks,
    wire_body,
)
from partners.models import Feed


def _ndjson(lines: int) -> bytes:
    return b"".join(b'{"event_id":"e-%d","device":"%s"}\n' % (n, os.urandom(8).hex().encode())
                    for n in range(lines))  # fmt: skip


def _feed(*, gzip_body: bool = True) -> Feed:
    # Only what wire_body reads; not saved.
    return Feed(encryption=Feed.Encryption.NONE, gzip=gzip_body)


def _inflate_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread is not threading.main_thread()}


def _stored(plain: bytes) -> str:
    name = f"wire-test/{uuid.uuid4()}.ndjson.gz"
    return body_save(name=name, content=io.BytesIO(gzip.compress(plain, compresslevel=1)))


def test_a_gzip_body_is_sent_as_stored_and_its_ndjson_is_signed_in_pieces() -> None:
    plain = _ndjson(40_000)  # several pieces
    path = _stored(plain)

    wire = wire_body(feed=_feed(), body_path=path)
    pieces = list(wire.signed_chunks())

    assert wire.content is None  # read from storage when sent
    with wire.opened() as sent:
        assert sent.read() == body_read(path)
    assert wire.headers() == {
        "Content-Type": NDJSON_CONTENT_TYPE,
        "Content-Encoding": GZIP_ENCODING,
    }
    assert b"".join(pieces) == plain
    assert len(pieces) > 1
    assert all(len(piece) <= SIGNED_CHUNK_BYTES for piece in pieces)


def test_a_feed_without_gzip_sends_and_signs_the_ndjson() -> None:
    plain = _ndjson(100)
    wire = wire_body(feed=_feed(gzip_body=False), body_path=_stored(plain))

    assert wire.content == plain
    with wire.opened() as sent:
        assert sent == plain
    assert wire.headers() == {"Content-Type": NDJSON_CONTENT_TYPE}
    assert list(wire.signed_chunks()) == [plain]


def test_a_body_of_several_gzip_members_is_inflated_whole() -> None:
    first, second = _ndjson(3), _ndjson(4)

    assert b"".join(inflated_chunks(gzip.compress(first) + gzip.compress(second))) == (
        first + second
    )


def test_an_empty_body_has_no_pieces() -> None:
    assert b"".join(inflated_chunks(gzip.compress(b""))) == b""


@pytest.mark.parametrize(
    "damage",
    [lambda body: body[: len(body) // 2], lambda body: body[:-9] + b"\0" * 9],
    ids=["truncated", "wrong-trailer"],
)
def test_a_damaged_body_raises_and_leaves_no_thread_behind(damage) -> None:
    before = _inflate_threads()
    body = damage(gzip.compress(_ndjson(20_000), compresslevel=1))

    with pytest.raises((EOFError, OSError, zlib.error)):
        b"".join(inflated_chunks(body))

    assert _inflate_threads() <= before


def test_a_reader_that_stops_early_leaves_no_thread_behind() -> None:
    before = _inflate_threads()
    pieces = inflated_chunks(gzip.compress(_ndjson(40_000), compresslevel=1))

    next(pieces)
    pieces.close()

    assert _inflate_threads() <= before


def test_a_stored_body_is_inflated_from_its_file(tmp_path) -> None:
    plain = _ndjson(30_000)
    path = tmp_path / "body.jsonl.gz"
    path.write_bytes(gzip.compress(plain, compresslevel=1))

    with path.open("rb") as stored:
        assert b"".join(inflated_chunks(stored)) == plain
