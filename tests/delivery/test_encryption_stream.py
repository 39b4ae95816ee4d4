"""Streamed JWE: a file in, the token out, chunk by chunk; read by ``decrypt_body`` and jwcrypto."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path
from typing import IO, Any

import pytest
from jwcrypto import jwe, jwk

from gateway.delivery.encryption import (
    STREAM_CHUNK_BYTES,
    InvalidPublicKey,
    StreamedToken,
    decrypt_body,
    encrypt_body,
    encrypt_stream,
)
from tests.delivery.test_encryption import (
    ALG,
    RSA,
    X25519,
    both_schemes,
    header_of,
    private_key,
    private_pem,
    public_pem,
)

CHUNK = STREAM_CHUNK_BYTES
GZIP, PARQUET = "application/gzip", "application/vnd.apache.parquet"
# Empty, shorter than one base64 quantum, around the chunk size, and several MB
# of sizes that leave 0, 1 or 2 bytes over a multiple of 3.
SIZES = [0, 1, 2, 3, 4, 5, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 2, 5 * CHUNK + 7]


def streamed(
    scheme: str, plaintext: bytes, *, content_type: str = GZIP, **options: Any
) -> tuple[bytes, StreamedToken]:
    target = io.BytesIO()
    written = encrypt_stream(
        io.BytesIO(plaintext),
        target,
        scheme=scheme,
        public_key_pem=public_pem(private_key(scheme)),
        content_type=content_type,
        **options,
    )
    return target.getvalue(), written


def jwcrypto_decrypted(token: bytes, scheme: str) -> bytes:
    message = jwe.JWE()
    message.deserialize(
        token.decode("ascii"), key=jwk.JWK.from_pem(private_pem(private_key(scheme)).encode())
    )
    return message.payload


@both_schemes
@pytest.mark.parametrize("size", SIZES)
def test_a_streamed_body_of_any_size_decrypts_with_ours_and_with_jwcrypto(
    scheme: str, size: int
) -> None:
    plaintext = os.urandom(size)

    token, written = streamed(scheme, plaintext)

    assert written.size == len(token)
    assert decrypt_body(token, private_key(scheme)) == plaintext
    if size:
        # jwcrypto cannot return an empty payload, even from its own tokens.
        assert jwcrypto_decrypted(token, scheme) == plaintext


@both_schemes
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5, 1000])
def test_any_chunk_size_gives_a_canonical_token(scheme: str, chunk_size: int) -> None:
    # Every chunk leaves a different remainder for the base64 encoder to carry.
    plaintext = os.urandom(10_000 + chunk_size)

    token, _ = streamed(scheme, plaintext, chunk_size=chunk_size)

    # decrypt_body refuses any part that is not canonical unpadded base64url.
    assert decrypt_body(token, private_key(scheme)) == plaintext
    assert jwcrypto_decrypted(token, scheme) == plaintext


@both_schemes
def test_the_header_says_what_the_plaintext_is_and_carries_the_key_id(scheme: str) -> None:
    token, written = streamed(scheme, b"PAR1...PAR1", content_type=PARQUET, key_id="k-2026")

    header = header_of(token)
    assert header == written.header
    assert (header["alg"], header["enc"], header["cty"], header["kid"]) == (
        ALG[scheme],
        "A256GCM",
        PARQUET,
        "k-2026",
    )
    assert "zip" not in header
    assert ("epk" in header) is (scheme == X25519)


def test_every_token_has_a_fresh_content_key_and_iv() -> None:
    first, _ = streamed(RSA, b"same body")
    second, _ = streamed(RSA, b"same body")

    assert first.split(b".")[1] != second.split(b".")[1]  # wrapped key
    assert first.split(b".")[2] != second.split(b".")[2]  # iv
    assert first.split(b".")[3] != second.split(b".")[3]  # ciphertext


def test_the_source_is_read_from_where_it_stands() -> None:
    source = io.BytesIO(b"skipped|kept")
    source.seek(len(b"skipped|"))
    target = io.BytesIO()

    encrypt_stream(
        source,
        target,
        scheme=X25519,
        public_key_pem=public_pem(private_key(X25519)),
        content_type=GZIP,
    )

    assert decrypt_body(target.getvalue(), private_key(X25519)) == b"kept"


class ReadSizes(io.FileIO):
    """A file that remembers how much each read asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rb")
        self.sizes: list[int] = []

    def read(self, size: int = -1, /) -> bytes:
        self.sizes.append(size)
        return super().read(size)


def test_a_large_file_is_encrypted_chunk_by_chunk_in_bounded_memory(tmp_path: Path) -> None:
    body = tmp_path / "body.jsonl.gz"
    with body.open("wb") as file:
        for _ in range(24):
            file.write(os.urandom(CHUNK))
    token_path = tmp_path / "body.jsonl.gz.jwe"

    with ReadSizes(body) as source, token_path.open("wb") as target:
        tracemalloc.start()
        try:
            written = encrypt_stream(
                source,
                target,
                scheme=X25519,
                public_key_pem=public_pem(private_key(X25519)),
                content_type=GZIP,
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert set(source.sizes) == {CHUNK}
    # A chunk, its ciphertext and its base64 at a time: far below the 24 MB body.
    assert peak < 8 * CHUNK
    token = token_path.read_bytes()
    assert written.size == len(token)
    assert decrypt_body(token, private_key(X25519)) == body.read_bytes()


@pytest.mark.parametrize(
    "pem", ["", "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n"]
)
def test_an_unusable_key_writes_nothing(pem: str) -> None:
    target = io.BytesIO()

    with pytest.raises(InvalidPublicKey):
        encrypt_stream(
            io.BytesIO(b"body"), target, scheme=X25519, public_key_pem=pem, content_type=GZIP
        )

    assert target.getvalue() == b""


@both_schemes
def test_pushes_get_the_same_tokens_from_bytes(scheme: str, monkeypatch) -> None:
    # encrypt_body is encrypt_stream on bytes: one implementation for pushes and files.
    calls: list[dict[str, Any]] = []
    real = encrypt_stream

    def spy(source: IO[bytes], target: IO[bytes], **options: Any) -> StreamedToken:
        calls.append(options)
        return real(source, target, **options)

    monkeypatch.setattr("gateway.delivery.encryption.encrypt_stream", spy)
    plaintext = os.urandom(CHUNK + 1)

    token = encrypt_body(
        plaintext, scheme=scheme, public_key_pem=public_pem(private_key(scheme)), key_id="k1"
    )

    assert len(calls) == 1
    assert header_of(token)["cty"] == "application/x-ndjson"  # pushes' cty, unchanged
    assert decrypt_body(token, private_key(scheme)) == plaintext
    assert jwcrypto_decrypted(token, scheme) == plaintext
