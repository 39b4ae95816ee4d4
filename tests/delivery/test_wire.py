"""The wire form of a batch body, and the NDJSON its signature covers, handed out in pieces."""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import threading
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from requests.utils import super_len

from gateway.delivery.encryption import JOSE_CONTENT_TYPE, decrypt_body
from gateway.delivery.storage import body_read, body_save
from gateway.delivery.wire import (
    DAMAGED_BODY_ERRORS,
    GZIP_ENCODING,
    NDJSON_CONTENT_TYPE,
    SIGNED_CHUNK_BYTES,
    SizedReader,
    inflated_chunks,
    wire_body,
)
from gateway.errors import DeliveryError
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

    assert wire.made is None  # read from storage when sent
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

    with wire.opened() as sent:
        assert len(sent) == len(plain)
        assert sent.read() == plain
    assert wire.headers() == {"Content-Type": NDJSON_CONTENT_TYPE}
    assert b"".join(wire.signed_chunks()) == plain
    wire.close()
    assert wire.made is not None and wire.made.closed


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

    # What the send path and downloads turn into "damaged body" errors.
    with pytest.raises(DAMAGED_BODY_ERRORS):
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


def test_an_encrypted_body_is_made_in_pieces_and_signed_as_sent() -> None:
    private_key = x25519.X25519PrivateKey.generate()
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    feed = Feed(
        encryption=Feed.Encryption.X25519,
        encryption_public_key=public_pem.decode(),
        encryption_key_id="k-1",
        gzip=True,
    )
    plain = _ndjson(2_000)
    path = _stored(plain)

    wire = wire_body(feed=feed, body_path=path)
    try:
        token = b"".join(wire.signed_chunks())
        with wire.opened() as sent:
            assert len(sent) == len(token)
            assert sent.read() == token
        with wire.file() as served:  # what a download streams, closed by its response
            assert served.read() == token
    finally:
        wire.close()

    assert wire.headers() == {"Content-Type": JOSE_CONTENT_TYPE}
    assert token.count(b".") == 4  # JWE compact serialisation, ASCII
    assert gzip.decompress(decrypt_body(token, private_key)) == plain


def test_a_made_body_is_sent_without_leaving_memory_for_disk() -> None:
    # requests learns a file's size from its descriptor, which would move a
    # temporary file held in memory to disk: the reader tells its size itself.
    with tempfile.SpooledTemporaryFile(max_size=1_000) as made:
        made.write(b"x" * 500)
        made.read()  # anywhere but the start

        reader = SizedReader(made)

        assert super_len(reader) == len(reader) == 500
        assert reader.read() == b"x" * 500
        assert not made._rolled


def test_a_feed_whose_key_cannot_encrypt_fails_permanently_and_leaves_no_file() -> None:
    feed = Feed(encryption=Feed.Encryption.X25519, encryption_public_key="not a key", gzip=True)

    with pytest.raises(DeliveryError) as raised:
        wire_body(feed=feed, body_path=_stored(_ndjson(10)))

    assert not raised.value.transient
    assert "cannot encrypt" in raised.value.detail
