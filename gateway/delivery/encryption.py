"""Encryption of batch bodies to a partner's public key, as JWE (RFC 7516). No Django import.

A feed may ask for its bodies to be encrypted so that only the partner can
read them, even where TLS ends before the partner's own systems (a CDN, a
queue, a bucket). Two schemes, both with A256GCM content encryption and the
Compact Serialization (``header.encrypted_key.iv.ciphertext.tag``, ASCII):

- ``ecdh-es+x25519``: alg ``ECDH-ES``, direct key agreement with an ephemeral
  X25519 key (RFC 7518 §4.6, RFC 8037). The ephemeral public key travels in
  the ``epk`` header; the encrypted key part is empty.
- ``rsa-oaep-256``: alg ``RSA-OAEP-256``; a fresh random 256-bit content key is
  wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256).

We never set the JWE ``zip`` header. The plaintext handed to
``encrypt_body`` is expected to be compressed already (the stored gzip body):
ciphertext does not compress, so compression must happen before encryption,
and plain gzip spares partners JOSE's raw-DEFLATE variant, which many
libraries refuse by default. For pushes and pulls ``cty`` names the media
type inside the gzip (NDJSON), and the partner gunzips after decrypting.

``encrypt_stream`` is the one implementation: it reads the plaintext from a
file in chunks and writes the token to another file, so a file drop of
hundreds of megabytes is never held in memory; ``encrypt_body`` runs it on
bytes for pushes and pulls.

``decrypt_body`` is the reference decryption, for tests, the partner
simulator and the partner guide.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    padding,
    rsa,
    x448,
    x25519,
)
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

# The media type of a JWE in Compact Serialization (RFC 7516 §9.2.1): the
# request's Content-Type when the body is encrypted.
JOSE_CONTENT_TYPE = "application/jose"
DEFAULT_CTY = "application/x-ndjson"
MIN_RSA_BITS = 2048

ENC = "A256GCM"
_CEK_BYTES = 32  # A256GCM
_IV_BYTES = 12  # 96-bit nonce, as RFC 7518 §5.3 requires for GCM
_TAG_BYTES = 16  # 128-bit tag
# Plaintext read per step by encrypt_stream: memory stays at a few of these.
STREAM_CHUNK_BYTES = 1024 * 1024
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_OAEP_SHA256 = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)

PublicKey = x25519.X25519PublicKey | rsa.RSAPublicKey
PrivateKey = x25519.X25519PrivateKey | rsa.RSAPrivateKey


class Scheme(StrEnum):
    """The values of ``Feed.encryption``."""

    NONE = "none"
    X25519 = "ecdh-es+x25519"
    RSA_OAEP_256 = "rsa-oaep-256"


_ALG = {Scheme.X25519: "ECDH-ES", Scheme.RSA_OAEP_256: "RSA-OAEP-256"}


class EncryptionError(ValueError):
    """Base class for everything this module refuses."""


class InvalidPublicKey(EncryptionError):
    """The PEM is not a usable public key for the feed's scheme."""


class DecryptionError(EncryptionError):
    """A token could not be decrypted: malformed, unsupported, for another key or tampered with."""


# --- keys ---------------------------------------------------------------------------


def parse_public_key(scheme: str, pem: str) -> PublicKey:
    """The partner's public key for ``scheme``; InvalidPublicKey says what is wrong with it.

    An unknown scheme (or "none") raises EncryptionError.
    """
    wanted = _encrypting_scheme(scheme)
    if not pem.strip():
        raise InvalidPublicKey("An encrypted feed needs the partner's public key (PEM).")
    key = _load_public_pem(pem)
    if wanted is Scheme.X25519:
        return _checked_x25519(key)
    return _checked_rsa(key)


def encryption_key_problems(scheme: str, pem: str) -> list[str]:
    """Human-readable problems with a feed's encryption settings; empty when they are usable.

    Meant for ``Feed.clean()``: a key that cannot encrypt must be refused when
    the feed is saved, not discovered when the first batch fails.
    """
    if scheme == Scheme.NONE:
        return []
    try:
        parse_public_key(scheme, pem)
    except EncryptionError as exc:
        return [str(exc)]
    return []


def _encrypting_scheme(scheme: str) -> Scheme:
    if scheme not in _ALG:
        raise EncryptionError(
            f"{scheme!r} is not an encryption scheme; use one of {', '.join(_ALG)}."
        )
    return Scheme(scheme)


def _load_public_pem(pem: str) -> PublicKeyTypes:
    # Catch the commonest paste mistakes first: their library errors are cryptic.
    if "PRIVATE KEY" in pem:
        raise InvalidPublicKey(
            "This is a private key. Ask the partner for its public key only "
            "(and to replace this key pair, since the private half has been shared)."
        )
    if "BEGIN CERTIFICATE" in pem:
        raise InvalidPublicKey(
            "This is a certificate; paste its public key (openssl x509 -pubkey -noout)."
        )
    try:
        return serialization.load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise InvalidPublicKey(
            "Not a PEM public key (expected -----BEGIN PUBLIC KEY-----)."
        ) from exc


def _checked_x25519(key: PublicKeyTypes) -> x25519.X25519PublicKey:
    if not isinstance(key, x25519.X25519PublicKey):
        raise InvalidPublicKey(
            f"The scheme {Scheme.X25519} needs an X25519 public key, not {_key_kind(key)}."
        )
    try:
        # A low-order point makes every shared secret all zeros, so anyone
        # could decrypt; cryptography refuses such an agreement.
        x25519.X25519PrivateKey.generate().exchange(key)
    except ValueError as exc:
        raise InvalidPublicKey("This X25519 key is a low-order point: unusable.") from exc
    return key


def _checked_rsa(key: PublicKeyTypes) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidPublicKey(
            f"The scheme {Scheme.RSA_OAEP_256} needs an RSA public key, not {_key_kind(key)}."
        )
    if key.key_size < MIN_RSA_BITS:
        raise InvalidPublicKey(
            f"The RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are required."
        )
    return key


_KEY_KINDS: tuple[tuple[type, str], ...] = (
    (x25519.X25519PublicKey, "an X25519 key"),
    (ec.EllipticCurvePublicKey, "an EC key"),
    (ed25519.Ed25519PublicKey, "an Ed25519 key"),
    (ed448.Ed448PublicKey, "an Ed448 key"),
    (x448.X448PublicKey, "an X448 key"),
    (dsa.DSAPublicKey, "a DSA key"),
)


def _key_kind(key: PublicKeyTypes) -> str:
    """How an error message names a key the scheme cannot use."""
    if isinstance(key, rsa.RSAPublicKey):
        return f"an RSA key ({key.key_size} bits)"
    return next((kind for cls, kind in _KEY_KINDS if isinstance(key, cls)), "another key type")


# --- encryption ---------------------------------------------------------------------


@dataclass(frozen=True)
class StreamedToken:
    """What ``encrypt_stream`` wrote: the token's protected header and its size in bytes."""

    header: dict[str, Any]
    size: int


def encrypt_body(
    plaintext: bytes,
    *,
    scheme: str,
    public_key_pem: str,
    key_id: str = "",
    content_type: str = DEFAULT_CTY,
) -> bytes:
    """Encrypt ``plaintext`` (the already gzip-compressed body) to the partner's key.

    Returns the JWE Compact Serialization as ASCII bytes: that is the request
    body, and the text the Standard Webhooks signature must cover.
    """
    token = io.BytesIO()
    encrypt_stream(
        io.BytesIO(plaintext),
        token,
        scheme=scheme,
        public_key_pem=public_key_pem,
        key_id=key_id,
        content_type=content_type,
    )
    return token.getvalue()


def encrypt_stream(
    source: IO[bytes],
    target: IO[bytes],
    *,
    scheme: str,
    public_key_pem: str,
    content_type: str,
    key_id: str = "",
    chunk_size: int = STREAM_CHUNK_BYTES,
) -> StreamedToken:
    """Write the JWE Compact Serialization of ``source`` (read to its end) to ``target``.

    The plaintext is read and encrypted ``chunk_size`` bytes at a time, so
    neither it nor the token is ever held whole. ``content_type`` becomes the
    header's ``cty``: what the plaintext is. The key is checked before
    anything is written: an unusable one raises InvalidPublicKey.
    """
    if chunk_size < 1:
        # read(0) returns b"": the token would silently hold an empty plaintext.
        raise ValueError("chunk_size must be at least 1")
    header, cek, encrypted_key = _content_key(
        scheme=scheme, public_key_pem=public_key_pem, key_id=key_id, content_type=content_type
    )
    protected = _b64url_encode(json.dumps(header, separators=(",", ":")).encode("utf-8"))
    iv = os.urandom(_IV_BYTES)
    encryptor = Cipher(algorithms.AES(cek), modes.GCM(iv)).encryptor()
    # The encoded protected header is the additional authenticated data
    # (RFC 7516 §5.1 step 14), so the tag also covers alg, kid, cty and epk.
    encryptor.authenticate_additional_data(protected.encode("ascii"))
    encoder = _Base64UrlStream()
    writer = _CountingWriter(target)
    writer.write(f"{protected}.{_b64url_encode(encrypted_key)}.{_b64url_encode(iv)}.".encode())
    while chunk := source.read(chunk_size):
        writer.write(encoder.update(encryptor.update(chunk)))
    writer.write(encoder.update(encryptor.finalize()) + encoder.finish())
    writer.write(b"." + _b64url_encode(encryptor.tag).encode("ascii"))
    return StreamedToken(header=header, size=writer.written)


def _content_key(
    *, scheme: str, public_key_pem: str, key_id: str, content_type: str
) -> tuple[dict[str, Any], bytes, bytes]:
    """The protected header, a fresh content key and its wrapped form (empty for ECDH-ES)."""
    recipient = parse_public_key(scheme, public_key_pem)
    header: dict[str, Any] = {"alg": _ALG[Scheme(scheme)], "enc": ENC, "cty": content_type}
    if key_id:
        header["kid"] = key_id
    if isinstance(recipient, x25519.X25519PublicKey):
        cek, encrypted_key = _ecdh_es_agree(recipient, header)
    else:
        cek, encrypted_key = _rsa_oaep_wrap(recipient)
    return header, cek, encrypted_key


def _ecdh_es_agree(
    recipient: x25519.X25519PublicKey, header: dict[str, Any]
) -> tuple[bytes, bytes]:
    """Derive the content key from a fresh ephemeral key; adds ``epk`` to ``header``."""
    ephemeral = x25519.X25519PrivateKey.generate()
    header["epk"] = {
        "kty": "OKP",
        "crv": "X25519",
        "x": _b64url_encode(ephemeral.public_key().public_bytes_raw()),
    }
    cek = _concat_kdf(ephemeral.exchange(recipient), party_u=b"", party_v=b"")
    # Direct key agreement: the agreed key is the content key, nothing is wrapped.
    return cek, b""


def _rsa_oaep_wrap(recipient: rsa.RSAPublicKey) -> tuple[bytes, bytes]:
    cek = os.urandom(_CEK_BYTES)
    return cek, recipient.encrypt(cek, _OAEP_SHA256)


class _Base64UrlStream:
    """Unpadded base64url of bytes given in pieces: the same text as encoding them at once.

    Base64 maps 3 bytes to 4 characters, so each piece is encoded up to a
    multiple of 3 bytes and the remainder (0 to 2 bytes) waits for the next.
    """

    def __init__(self) -> None:
        self._pending = b""

    def update(self, data: bytes) -> bytes:
        if self._pending:
            data = self._pending + data
        whole = len(data) - len(data) % 3
        self._pending = data[whole:]
        # A memoryview slice: no copy of the chunk before encoding it.
        return base64.urlsafe_b64encode(memoryview(data)[:whole])

    def finish(self) -> bytes:
        tail, self._pending = self._pending, b""
        return base64.urlsafe_b64encode(tail).rstrip(b"=")


class _CountingWriter:
    """Writes to a file and counts the bytes: a token's size without seeking back."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self.written = 0

    def write(self, data: bytes) -> None:
        if data:
            self._target.write(data)
            self.written += len(data)


def _concat_kdf(shared_secret: bytes, *, party_u: bytes, party_v: bytes) -> bytes:
    """The Concat KDF of RFC 7518 §4.6.2 for direct ECDH-ES with A256GCM."""

    def length_prefixed(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    # In direct mode the AlgorithmID is the "enc" value and keydatalen its key size.
    other_info = (
        length_prefixed(ENC.encode("ascii"))
        + length_prefixed(party_u)
        + length_prefixed(party_v)
        + struct.pack(">I", _CEK_BYTES * 8)
    )
    kdf = ConcatKDFHash(algorithm=hashes.SHA256(), length=_CEK_BYTES, otherinfo=other_info)
    return kdf.derive(shared_secret)


# --- decryption (reference) ---------------------------------------------------------


def decrypt_body(token: bytes | str, private_key: PrivateKey) -> bytes:
    """The plaintext of a JWE made by ``encrypt_body`` (or any conforming library).

    Strict on purpose: anything unexpected raises DecryptionError, and no
    plaintext is returned unless the GCM tag over ciphertext and header checks.
    """
    protected, encrypted_key, iv, ciphertext, tag = _split(token)
    header = _protected_header(protected)
    _check_header(header, private_key)
    if isinstance(private_key, x25519.X25519PrivateKey):
        if encrypted_key:
            raise DecryptionError("ECDH-ES in direct mode must have an empty encrypted key.")
        cek = _ecdh_es_recover(header, private_key)
    else:
        cek = _rsa_oaep_unwrap(encrypted_key, private_key)
    if len(iv) != _IV_BYTES or len(tag) != _TAG_BYTES:
        raise DecryptionError("The IV or the authentication tag has the wrong length.")
    try:
        return AESGCM(cek).decrypt(iv, ciphertext + tag, protected.encode("ascii"))
    except InvalidTag as exc:
        raise DecryptionError(
            "Authentication failed: the token was altered or is not for this key."
        ) from exc


def _split(token: bytes | str) -> tuple[str, bytes, bytes, bytes, bytes]:
    try:
        text = token.decode("ascii") if isinstance(token, bytes) else token
    except UnicodeDecodeError as exc:
        raise DecryptionError("A JWE compact token is ASCII.") from exc
    parts = text.split(".")
    if len(parts) != 5:
        raise DecryptionError(f"A JWE compact token has 5 parts, this one has {len(parts)}.")
    protected, *rest = parts
    encrypted_key, iv, ciphertext, tag = (_b64url_decode(part) for part in rest)
    return protected, encrypted_key, iv, ciphertext, tag


def _protected_header(protected: str) -> dict[str, Any]:
    try:
        header = json.loads(_b64url_decode(protected))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecryptionError("The protected header is not JSON.") from exc
    if not isinstance(header, dict):
        raise DecryptionError("The protected header is not a JSON object.")
    return header


def _check_header(header: dict[str, Any], private_key: PrivateKey) -> None:
    if "crit" in header:
        raise DecryptionError(f"Unsupported critical header parameters: {header['crit']!r}.")
    if "zip" in header:
        # We never compress inside JOSE; returning still-deflated bytes as if
        # they were the plaintext would be a silent failure.
        raise DecryptionError("Compressed JWE ('zip') is not accepted.")
    if header.get("enc") != ENC:
        raise DecryptionError(f"Unsupported enc {header.get('enc')!r}; expected {ENC}.")
    if isinstance(private_key, x25519.X25519PrivateKey):
        expected = _ALG[Scheme.X25519]
    elif isinstance(private_key, rsa.RSAPrivateKey):
        expected = _ALG[Scheme.RSA_OAEP_256]
    else:
        raise DecryptionError(f"Unsupported private key type {type(private_key).__name__}.")
    if header.get("alg") != expected:
        raise DecryptionError(f"The token's alg {header.get('alg')!r} needs another key type.")


def _ecdh_es_recover(header: dict[str, Any], private_key: x25519.X25519PrivateKey) -> bytes:
    epk = header.get("epk")
    if not isinstance(epk, dict) or (epk.get("kty"), epk.get("crv")) != ("OKP", "X25519"):
        raise DecryptionError("The epk header must be an OKP X25519 JWK.")
    try:
        ephemeral = x25519.X25519PublicKey.from_public_bytes(_b64url_decode(epk.get("x", "")))
        shared = private_key.exchange(ephemeral)
    except ValueError as exc:
        raise DecryptionError("The epk header holds an unusable X25519 key.") from exc
    return _concat_kdf(
        shared,
        party_u=_b64url_decode(header.get("apu", "")),
        party_v=_b64url_decode(header.get("apv", "")),
    )


def _rsa_oaep_unwrap(encrypted_key: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    try:
        cek = private_key.decrypt(encrypted_key, _OAEP_SHA256)
    except ValueError:
        cek = b""
    if len(cek) != _CEK_BYTES:
        # RFC 7516 §11.5: carry on with a random key so that a bad wrapped key
        # fails exactly like a bad tag, leaving no padding oracle to probe.
        cek = os.urandom(_CEK_BYTES)
    return cek


# --- base64url without padding (RFC 7515 §2) ----------------------------------------


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: Any) -> bytes:
    # Python's decoder skips characters outside the alphabet; JOSE must not.
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise DecryptionError("A token part is not unpadded base64url.")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise DecryptionError("A token part is not unpadded base64url.") from exc
    # Refuse non-canonical spellings (stray low bits in the last character),
    # so that any change to the token text is an error, never ignored.
    if _b64url_encode(data) != text:
        raise DecryptionError("A token part is not canonical base64url.")
    return data
