"""JWE bodies: our tokens against an independent implementation (jwcrypto), and every refusal."""

from __future__ import annotations

import base64
import gzip
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from jwcrypto import jwe, jwk

from gateway.delivery.encryption import (
    DecryptionError,
    EncryptionError,
    InvalidPublicKey,
    PrivateKey,
    decrypt_body,
    encrypt_body,
    encryption_key_problems,
    parse_public_key,
)

X25519, RSA = "ecdh-es+x25519", "rsa-oaep-256"
ALG = {X25519: "ECDH-ES", RSA: "RSA-OAEP-256"}
PLAINTEXT = gzip.compress(b'{"event_id":"e1"}\n{"event_id":"e2"}\n')
PARTNER_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "partner-guide.md"


# --- keys -----------------------------------------------------------------------------


@cache
def private_key(scheme: str) -> PrivateKey:
    """One key pair per scheme for the whole run: RSA generation is slow."""
    if scheme == X25519:
        return x25519.X25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: Any) -> str:
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def private_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def encrypted(scheme: str, plaintext: bytes = PLAINTEXT, **options: Any) -> bytes:
    return encrypt_body(
        plaintext, scheme=scheme, public_key_pem=public_pem(private_key(scheme)), **options
    )


def header_of(token: bytes) -> dict[str, Any]:
    protected = token.split(b".")[0]
    return json.loads(base64.urlsafe_b64decode(protected + b"=" * (-len(protected) % 4)))


both_schemes = pytest.mark.parametrize("scheme", [X25519, RSA])


# --- our tokens, and jwcrypto's -----------------------------------------------------------


@both_schemes
def test_a_body_round_trips(scheme: str) -> None:
    assert decrypt_body(encrypted(scheme), private_key(scheme)) == PLAINTEXT


@both_schemes
def test_jwcrypto_decrypts_our_tokens(scheme: str) -> None:
    token = encrypted(scheme, key_id="partner-2026-11")

    message = jwe.JWE()
    message.deserialize(
        token.decode("ascii"), key=jwk.JWK.from_pem(private_pem(private_key(scheme)).encode())
    )

    assert message.payload == PLAINTEXT
    assert message.jose_header["alg"] == ALG[scheme]
    assert message.jose_header["enc"] == "A256GCM"
    assert message.jose_header["kid"] == "partner-2026-11"


@both_schemes
def test_we_decrypt_jwcrypto_tokens(scheme: str) -> None:
    protected = {"alg": ALG[scheme], "enc": "A256GCM", "kid": "k1"}
    token = _jwcrypto_token(scheme, protected)

    assert decrypt_body(token, private_key(scheme)) == PLAINTEXT


def test_we_honour_party_info_in_the_key_derivation() -> None:
    # apu/apv feed the Concat KDF; jwcrypto uses them when present.
    protected = {"alg": "ECDH-ES", "enc": "A256GCM", "apu": "QWxpY2U", "apv": "Qm9i"}
    token = _jwcrypto_token(X25519, protected)

    assert decrypt_body(token, private_key(X25519)) == PLAINTEXT


def _jwcrypto_token(scheme: str, protected: dict[str, Any], plaintext: bytes = PLAINTEXT) -> bytes:
    message = jwe.JWE(plaintext, protected=json.dumps(protected))
    message.add_recipient(jwk.JWK.from_pem(public_pem(private_key(scheme)).encode()))
    return message.serialize(compact=True).encode("ascii")


def test_an_x25519_token_agrees_directly_on_a_fresh_ephemeral_key() -> None:
    first, second = encrypted(X25519), encrypted(X25519)

    header = header_of(first)
    assert header["epk"]["kty"] == "OKP"
    assert header["epk"]["crv"] == "X25519"
    assert header["epk"] != header_of(second)["epk"]
    assert first.split(b".")[1] == b""  # direct agreement: no wrapped key


def test_an_rsa_token_wraps_a_key_as_long_as_the_modulus() -> None:
    encrypted_key = encrypted(RSA).split(b".")[1]

    assert len(base64.urlsafe_b64decode(encrypted_key + b"==")) == 256
    assert "epk" not in header_of(encrypted(RSA))


@both_schemes
def test_the_header_names_the_content_type_never_zip_and_kid_only_when_given(scheme: str) -> None:
    token = encrypted(scheme)

    assert re.fullmatch(rb"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+){3}", token)
    header = header_of(token)
    assert header["cty"] == "application/x-ndjson"
    assert "zip" not in header
    assert "kid" not in header
    assert header_of(encrypted(scheme, content_type="application/json"))["cty"] == (
        "application/json"
    )


def test_the_same_body_encrypts_differently_every_time() -> None:
    assert encrypted(RSA) != encrypted(RSA)


# --- keys we refuse -----------------------------------------------------------------------


def test_a_usable_key_has_no_problems() -> None:
    assert encryption_key_problems(X25519, public_pem(private_key(X25519))) == []
    assert encryption_key_problems(RSA, public_pem(private_key(RSA))) == []
    assert isinstance(parse_public_key(RSA, public_pem(private_key(RSA))), rsa.RSAPublicKey)


def test_no_encryption_needs_no_key() -> None:
    assert encryption_key_problems("none", "") == []


@pytest.mark.parametrize(
    ("scheme", "pem", "problem"),
    [
        (X25519, lambda: public_pem(private_key(RSA)), "needs an X25519 public key, not an RSA"),
        (RSA, lambda: public_pem(private_key(X25519)), "needs an RSA public key, not an X25519"),
        (
            X25519,
            lambda: public_pem(ec.generate_private_key(ec.SECP256R1())),
            "not an EC key",
        ),
        (RSA, lambda: public_pem(ed25519.Ed25519PrivateKey.generate()), "not an Ed25519 key"),
        (
            RSA,
            lambda: public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
            "1024 bits; at least 2048",
        ),
        (
            RSA,
            lambda: "-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----",
            "Not a PEM",
        ),
        (X25519, lambda: "hello", "Not a PEM public key"),
        (X25519, lambda: "  ", "needs the partner's public key"),
        (X25519, lambda: private_pem(private_key(X25519)), "This is a private key"),
        (
            RSA,
            lambda: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "This is a certificate",
        ),
        (X25519, lambda: _low_order_x25519_pem(), "low-order"),
        ("aes-128", lambda: public_pem(private_key(RSA)), "not an encryption scheme"),
    ],
    ids=[
        "rsa-for-x25519",
        "x25519-for-rsa",
        "ec",
        "ed25519",
        "short-rsa",
        "bad-der",
        "garbage",
        "empty",
        "private-key",
        "certificate",
        "low-order-point",
        "unknown-scheme",
    ],
)
def test_an_unusable_key_is_refused_with_a_clear_problem(
    scheme: str, pem: Any, problem: str
) -> None:
    text = pem()

    [reported] = encryption_key_problems(scheme, text)

    assert problem in reported
    with pytest.raises(EncryptionError, match=re.escape(problem)):
        encrypt_body(PLAINTEXT, scheme=scheme, public_key_pem=text)


def test_key_errors_are_value_errors() -> None:
    assert issubclass(InvalidPublicKey, ValueError)
    with pytest.raises(ValueError):
        parse_public_key(RSA, "garbage")


def _low_order_x25519_pem() -> str:
    # The all-zero point: every "shared secret" with it is zero.
    return public_pem(x25519.X25519PublicKey.from_public_bytes(bytes(32)))


# --- tokens we refuse ---------------------------------------------------------------------


def _with_part(token: bytes, index: int, part: bytes) -> bytes:
    parts = token.split(b".")
    parts[index] = part
    return b".".join(parts)


def _flip_a_bit(token: bytes, index: int) -> bytes:
    """The token with one bit of one decoded part changed, re-encoded canonically."""
    segment = token.split(b".")[index]
    data = bytearray(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    data[len(data) // 2] ^= 0x01
    return _with_part(token, index, base64.urlsafe_b64encode(bytes(data)).rstrip(b"="))


@both_schemes
@pytest.mark.parametrize(("index", "part"), [(2, "iv"), (3, "ciphertext"), (4, "tag")])
def test_a_changed_bit_fails_authentication(scheme: str, index: int, part: str) -> None:
    token = _flip_a_bit(encrypted(scheme), index)

    with pytest.raises(DecryptionError, match="Authentication failed"):
        decrypt_body(token, private_key(scheme))


def test_a_changed_wrapped_key_fails_like_a_changed_tag() -> None:
    # No separate "bad padding" error: that would be an oracle (RFC 7516 §11.5).
    token = _flip_a_bit(encrypted(RSA), 1)

    with pytest.raises(DecryptionError, match="Authentication failed"):
        decrypt_body(token, private_key(RSA))


@both_schemes
def test_a_changed_header_fails_authentication(scheme: str) -> None:
    token = encrypted(scheme, key_id="k1")
    header = {**header_of(token), "kid": "k2"}
    forged = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=")

    with pytest.raises(DecryptionError, match="Authentication failed"):
        decrypt_body(_with_part(token, 0, forged), private_key(scheme))


def test_a_swapped_ephemeral_key_fails_authentication() -> None:
    token = encrypted(X25519)
    other = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    header = header_of(token)
    header["epk"]["x"] = base64.urlsafe_b64encode(other).rstrip(b"=").decode()
    forged = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=")

    with pytest.raises(DecryptionError, match="Authentication failed"):
        decrypt_body(_with_part(token, 0, forged), private_key(X25519))


@both_schemes
def test_another_key_of_the_right_type_cannot_decrypt(scheme: str) -> None:
    stranger = (
        x25519.X25519PrivateKey.generate()
        if scheme == X25519
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    with pytest.raises(DecryptionError, match="Authentication failed"):
        decrypt_body(encrypted(scheme), stranger)


def test_a_key_of_the_wrong_type_is_refused_before_decrypting() -> None:
    with pytest.raises(DecryptionError, match="needs another key type"):
        decrypt_body(encrypted(RSA), private_key(X25519))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.rsplit(b".", 1)[0], "has 5 parts, this one has 4"),
        (lambda t: t + b".", "has 5 parts, this one has 6"),
        (lambda t: t + b"=", "not unpadded base64url"),
        (lambda t: t.replace(b".", b". ", 1), "not unpadded base64url"),
        (lambda t: t[:-1] + (b"B" if t[-1:] == b"A" else b"A"), "not canonical|Authentication"),
        (lambda t: "é".encode() + t, "ASCII"),
        (lambda t: _with_part(t, 0, b"bm90IGpzb24"), "not JSON"),
        (lambda t: _with_part(t, 0, b"WzFd"), "not a JSON object"),
    ],
    ids=["4-parts", "6-parts", "padding", "space", "last-char", "non-ascii", "not-json", "array"],
)
def test_a_malformed_token_is_refused(change: Any, message: str) -> None:
    with pytest.raises(DecryptionError, match=message):
        decrypt_body(change(encrypted(X25519)), private_key(X25519))


def test_a_non_canonical_encoding_is_refused() -> None:
    # A 16-byte tag has 2 spare bits in its last character; setting one keeps the bytes.
    token = encrypted(X25519)
    tag = token.split(b".")[4]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spelled_differently = tag[:-1] + bytes([alphabet[alphabet.index(tag[-1]) ^ 0x01]])

    with pytest.raises(DecryptionError, match="not canonical"):
        decrypt_body(_with_part(token, 4, spelled_differently), private_key(X25519))


@pytest.mark.parametrize(
    ("protected", "message"),
    [
        ({"alg": "ECDH-ES", "enc": "A128GCM"}, "Unsupported enc 'A128GCM'"),
        ({"alg": "ECDH-ES", "enc": "A256GCM", "zip": "DEF"}, "'zip'"),
    ],
)
def test_tokens_we_never_make_are_refused(protected: dict[str, Any], message: str) -> None:
    token = _jwcrypto_token(X25519, protected)

    with pytest.raises(DecryptionError, match=message):
        decrypt_body(token, private_key(X25519))


def test_critical_extensions_are_refused() -> None:
    token = encrypted(X25519)
    header = {**header_of(token), "crit": ["exp"], "exp": 1}
    forged = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=")

    with pytest.raises(DecryptionError, match="critical"):
        decrypt_body(_with_part(token, 0, forged), private_key(X25519))


# --- the partner guide's snippet ------------------------------------------------------------


def _partner_guide_decrypter() -> Any:
    """``decrypted_body`` exactly as printed in docs/partner-guide.md, "Encrypted bodies"."""
    guide = PARTNER_GUIDE.read_text(encoding="utf-8")
    section = guide.split("## Encrypted bodies", 1)[1].split("\n## ", 1)[0]
    [code] = [
        block
        for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
        if "def decrypted_body" in block
    ]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(PARTNER_GUIDE), "exec"), namespace)
    return namespace["decrypted_body"]


@both_schemes
def test_the_partner_guide_snippet_decrypts_our_bodies(scheme: str) -> None:
    decrypted_body = _partner_guide_decrypter()
    ndjson = b'{"event_id":"e1"}\n'
    token = encrypted(scheme, gzip.compress(ndjson), key_id="k1")

    # As a partner would hold it: loaded from PEM.
    key = serialization.load_pem_private_key(private_pem(private_key(scheme)).encode(), None)

    assert decrypted_body(token, key) == ndjson


@both_schemes
def test_the_partner_guide_snippet_refuses_an_altered_body(scheme: str) -> None:
    decrypted_body = _partner_guide_decrypter()
    token = _flip_a_bit(encrypted(scheme), 3)

    with pytest.raises(InvalidTag):
        decrypted_body(token, private_key(scheme))


def test_the_partner_guide_snippet_refuses_the_wrong_kind_of_key() -> None:
    decrypted_body = _partner_guide_decrypter()

    with pytest.raises(ValueError, match="unexpected alg"):
        decrypted_body(encrypted(RSA), private_key(X25519))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: {**h, "epk": {**h["epk"], "crv": "P-256"}}, "OKP X25519 JWK"),
        (lambda h: {**h, "epk": "nope"}, "OKP X25519 JWK"),
        (lambda h: {**h, "epk": {**h["epk"], "x": "AAAA"}}, "unusable X25519 key"),
    ],
    ids=["other-curve", "not-a-jwk", "short-key"],
)
def test_a_bad_ephemeral_key_is_refused(change: Any, message: str) -> None:
    token = encrypted(X25519)
    forged = base64.urlsafe_b64encode(json.dumps(change(header_of(token))).encode()).rstrip(b"=")

    with pytest.raises(DecryptionError, match=message):
        decrypt_body(_with_part(token, 0, forged), private_key(X25519))


def test_ecdh_es_with_a_wrapped_key_is_refused() -> None:
    token = _with_part(encrypted(X25519), 1, b"AAAA")

    with pytest.raises(DecryptionError, match="empty encrypted key"):
        decrypt_body(token, private_key(X25519))
