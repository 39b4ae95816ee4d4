"""Standard Webhooks v1a (Ed25519) signatures, checked with ``cryptography`` as the verifier.

The verifier side here decodes keys by hand (base64, base64url) and never
calls the signing module, so a bug shared by signer and verifier cannot hide.
"""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook

from gateway.delivery.signing import (
    InvalidSecret,
    ed25519_jwk,
    ed25519_key_pair,
    ed25519_private_key,
    ed25519_public_key,
    ed25519_signature,
    public_key_for,
    secret_key,
    sign,
    signature,
    signature_headers,
    webhook_headers,
)

SEED = bytes(range(32))
WHSK, WHPK = ed25519_key_pair(SEED)
WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()
PAYLOAD = b'{"campaign_id":"cmp-1","event_id":"evt-1"}\n'

# RFC 8032 section 7.1, test 1: a seed and the public key it must give.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def _verifier_from_whpk(whpk: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(whpk.removeprefix("whpk_")))


def _verifier_from_jwk_x(x: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))


def _signed_bytes(value: str) -> bytes:
    version, _, encoded = value.partition(",")
    assert version == "v1a"
    return base64.b64decode(encoded, validate=True)


def test_a_v1a_signature_verifies_with_the_whpk_public_key() -> None:
    signed = ed25519_signature(
        secret=WHSK, msg_id="batch-1", timestamp=1_790_000_000, payload=PAYLOAD
    )

    _verifier_from_whpk(WHPK).verify(_signed_bytes(signed), b"batch-1.1790000000." + PAYLOAD)


def test_a_v1a_signature_verifies_with_the_jwk_x_value() -> None:
    jwk = ed25519_jwk(public_key=WHPK, key_id="k1")
    signed = ed25519_signature(secret=WHSK, msg_id="b", timestamp=7, payload=PAYLOAD)

    _verifier_from_jwk_x(jwk["x"]).verify(_signed_bytes(signed), b"b.7." + PAYLOAD)


def test_the_jwk_has_the_rfc_8037_members_and_unpadded_base64url() -> None:
    jwk = ed25519_jwk(public_key=WHPK, key_id="k1")

    assert {k: v for k, v in jwk.items() if k != "x"} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": "k1",
        "use": "sig",
        "alg": "EdDSA",
    }
    assert "=" not in jwk["x"] and "+" not in jwk["x"] and "/" not in jwk["x"]
    assert len(jwk["x"]) == 43  # 32 bytes, unpadded


@pytest.mark.parametrize("changed", ["msg_id", "timestamp", "payload"])
def test_a_changed_id_timestamp_or_payload_fails_v1a_verification(changed: str) -> None:
    signed = _signed_bytes(ed25519_signature(secret=WHSK, msg_id="a", timestamp=1, payload=b"x"))
    content = {"msg_id": b"b.1.x", "timestamp": b"a.2.x", "payload": b"a.1.y"}[changed]

    with pytest.raises(InvalidSignature):
        _verifier_from_whpk(WHPK).verify(signed, content)


def test_another_key_pair_fails_v1a_verification() -> None:
    _other_secret, other_public = ed25519_key_pair(b"\x01" * 32)
    signed = _signed_bytes(ed25519_signature(secret=WHSK, msg_id="a", timestamp=1, payload=b"x"))

    with pytest.raises(InvalidSignature):
        _verifier_from_whpk(other_public).verify(signed, b"a.1.x")


def test_the_secret_key_is_the_raw_32_byte_seed_as_in_rfc_8032() -> None:
    secret, public = ed25519_key_pair(RFC8032_SEED)

    assert secret == "whsk_" + base64.b64encode(RFC8032_SEED).decode()
    assert public == "whpk_" + base64.b64encode(RFC8032_PUBLIC).decode()
    assert public_key_for(secret) == public


def test_sign_picks_the_scheme_from_the_key_prefix() -> None:
    assert sign(secret=WHSEC, msg_id="a", timestamp=1, payload=b"").startswith("v1,")
    assert sign(secret=WHSK, msg_id="a", timestamp=1, payload=b"").startswith("v1a,")
    assert sign(secret=WHSEC, msg_id="a", timestamp=1, payload=b"") == signature(
        secret=WHSEC, msg_id="a", timestamp=1, payload=b""
    )


def test_sign_refuses_a_public_key_without_echoing_it() -> None:
    with pytest.raises(InvalidSecret, match="whsec_") as caught:
        sign(secret=WHPK, msg_id="a", timestamp=1, payload=b"")
    assert WHPK not in str(caught.value)


def test_headers_with_both_schemes_still_verify_with_the_reference_library() -> None:
    # The reference library skips versions it does not know (v1a) and finds v1.
    now = int(time.time())
    signatures = [
        sign(secret=WHSK, msg_id="batch-1", timestamp=now, payload=PAYLOAD),
        sign(secret=WHSEC, msg_id="batch-1", timestamp=now, payload=PAYLOAD),
    ]
    headers = signature_headers(msg_id="batch-1", timestamp=now, signatures=signatures)

    assert headers["webhook-signature"] == " ".join(signatures)
    Webhook(WHSEC).verify(PAYLOAD, headers, json_parse=False)


def test_webhook_headers_sign_with_a_v1a_key_too() -> None:
    headers = webhook_headers(secret=WHSK, msg_id="b-1", timestamp=5, payload=PAYLOAD)

    _verifier_from_whpk(WHPK).verify(
        _signed_bytes(headers["webhook-signature"]), b"b-1.5." + PAYLOAD
    )


def test_headers_need_at_least_one_signature() -> None:
    with pytest.raises(ValueError, match="at least one signature"):
        signature_headers(msg_id="a", timestamp=1, signatures=[])


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_" + base64.b64encode(SEED).decode(), "start with 'whsk_'"),
        ("whsk_not base64!", "not valid base64"),
        ("whsk_", "is empty"),
        ("whsk_" + base64.b64encode(b"k" * 31).decode(), "32 bytes, not 31"),
        ("whsk_" + base64.b64encode(b"k" * 33).decode(), "32 bytes, not 33"),
        ("whsk_" + base64.b64encode(b"k" * 64).decode(), "32 bytes, not 64"),
    ],
)
def test_malformed_ed25519_secret_keys_are_refused_clearly(secret: str, message: str) -> None:
    with pytest.raises(InvalidSecret, match=message):
        ed25519_private_key(secret)
    with pytest.raises(InvalidSecret):
        ed25519_signature(secret=secret, msg_id="a", timestamp=1, payload=b"")


@pytest.mark.parametrize(
    ("public_key", "message"),
    [
        (WHSK.replace("whsk_", "whpx_"), "start with 'whpk_'"),
        ("whpk_" + base64.b64encode(b"k" * 16).decode(), "32 bytes, not 16"),
        ("whpk_%%%", "not valid base64"),
    ],
)
def test_malformed_ed25519_public_keys_are_refused_clearly(public_key: str, message: str) -> None:
    with pytest.raises(InvalidSecret, match=message):
        ed25519_public_key(public_key)
    with pytest.raises(InvalidSecret):
        ed25519_jwk(public_key=public_key, key_id="k1")


@pytest.mark.parametrize("size", [16, 23, 65])
def test_hmac_secrets_outside_24_to_64_bytes_are_refused(size: int) -> None:
    with pytest.raises(InvalidSecret, match=f"24 to 64 bytes, not {size}"):
        secret_key("whsec_" + base64.b64encode(b"k" * size).decode())


def test_a_seed_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(InvalidSecret, match="32 bytes"):
        ed25519_key_pair(b"short")


@pytest.mark.parametrize("msg_id", ["", "a.b"])
def test_v1a_rejects_ids_that_would_make_the_signed_string_ambiguous(msg_id: str) -> None:
    with pytest.raises(ValueError, match="webhook id"):
        ed25519_signature(secret=WHSK, msg_id=msg_id, timestamp=1, payload=b"")
