"""The simulator verifies v1a (Ed25519) too, and accepts a request when any signature verifies.

Test signatures are made with ``cryptography`` and ``hmac`` by hand, never with
the gateway's signing code, except in the round trips that check the gateway
against the simulator on purpose.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.delivery.signers import LocalSigner, SigningKeyMaterial, signed_headers
from gateway.simulator.puller import Puller
from gateway.simulator.server import PartnerSimulator
from gateway.simulator.signatures import SignatureError, signature_verify, verification_keys
from gateway.simulator.store import BatchStore
from partners.models import CampaignAssignment, Feed, SigningSecret
from partners.services import partner_create, signing_key_rotate
from tests.factories import make_api_key, make_feed
from tests.partner_api.builders import make_ready_batch
from tests.simulator.conftest import event, ndjson, new_secret, sign


def _key_pair() -> tuple[Ed25519PrivateKey, str]:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, "whpk_" + base64.b64encode(raw).decode()


def _v1a(private: Ed25519PrivateKey, *, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = private.sign(f"{msg_id}.{timestamp}.".encode() + body)
    return "v1a," + base64.b64encode(signed).decode()


def _headers(signatures: list[str], *, timestamp: int, msg_id: str = "m1") -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def test_a_v1a_signature_verifies_with_the_whpk_public_key() -> None:
    private, public = _key_pair()
    now = int(time.time())
    headers = _headers([_v1a(private, msg_id="m1", timestamp=now, body=b"x")], timestamp=now)

    signature_verify(secret=public, body="x", headers=headers)


def test_any_one_verifying_signature_is_enough() -> None:
    private, public = _key_pair()
    now = int(time.time())
    signatures = [
        sign(new_secret(), msg_id="m1", timestamp=now, body=b"x"),  # a key we do not hold
        _v1a(private, msg_id="m1", timestamp=now, body=b"x"),
    ]

    signature_verify(
        secret=f"{new_secret()} {public}", body="x", headers=_headers(signatures, timestamp=now)
    )


def test_a_v1_signature_still_verifies_when_public_keys_are_configured_too() -> None:
    secret = new_secret()
    _private, public = _key_pair()
    now = int(time.time())
    headers = _headers([sign(secret, msg_id="m1", timestamp=now, body=b"x")], timestamp=now)

    signature_verify(secret=f"{public},{secret}", body="x", headers=headers)


def test_a_v1a_signature_of_another_key_is_refused() -> None:
    private, _public = _key_pair()
    _other, other_public = _key_pair()
    now = int(time.time())
    headers = _headers([_v1a(private, msg_id="m1", timestamp=now, body=b"x")], timestamp=now)

    with pytest.raises(SignatureError, match="No matching signature"):
        signature_verify(secret=other_public, body="x", headers=headers)


def test_a_v1a_signature_needs_a_public_key_not_a_secret() -> None:
    private, _public = _key_pair()
    now = int(time.time())
    headers = _headers([_v1a(private, msg_id="m1", timestamp=now, body=b"x")], timestamp=now)

    with pytest.raises(SignatureError):
        signature_verify(secret=new_secret(), body="x", headers=headers)


@pytest.mark.parametrize("check_timestamp", [True, False])
def test_a_changed_body_fails_v1a(check_timestamp: bool) -> None:
    private, public = _key_pair()
    now = int(time.time())
    headers = _headers([_v1a(private, msg_id="m1", timestamp=now, body=b"x")], timestamp=now)

    with pytest.raises(SignatureError):
        signature_verify(secret=public, body="y", headers=headers, check_timestamp=check_timestamp)


def test_an_old_v1a_signature_fails_the_strict_check_but_passes_the_age_tolerant_one() -> None:
    private, public = _key_pair()
    old = int(time.time()) - 86400
    headers = _headers([_v1a(private, msg_id="m1", timestamp=old, body=b"x")], timestamp=old)

    with pytest.raises(SignatureError, match="too old"):
        signature_verify(secret=public, body="x", headers=headers)
    signature_verify(secret=public, body="x", headers=headers, check_timestamp=False)


@pytest.mark.parametrize("signature", ["v1a,@@@", "v1a,", "v1a"])
def test_malformed_v1a_entries_are_refused(signature: str) -> None:
    _private, public = _key_pair()
    headers = _headers([signature], timestamp=int(time.time()))

    with pytest.raises(SignatureError):
        signature_verify(secret=public, body="x", headers=headers)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("whpk_" + base64.b64encode(b"k" * 31).decode(), "31 bytes, not 32"),
        ("whpk_%%%", "not base64"),
        ("whsk_" + base64.b64encode(b"k" * 32).decode(), "whsec_ secrets or whpk_"),
        ("", "whsec_ secrets or whpk_"),
    ],
)
def test_unusable_verification_keys_are_refused_clearly(keys: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        verification_keys(keys)


def test_the_simulator_refuses_to_start_with_a_bad_public_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whpk_"):
        PartnerSimulator(data_dir=tmp_path, secret="whpk_AAAA")


def test_the_simulator_accepts_a_push_the_gateway_signed_with_v1a_only(tmp_path: Path) -> None:
    from gateway.delivery.signing import ed25519_key_pair

    whsk, whpk = ed25519_key_pair(b"\x07" * 32)
    signer = LocalSigner(keys=(SigningKeyMaterial(key_id="k1", secret=whsk),))
    body = ndjson([event(event_id="a")])
    headers = signed_headers(
        signer=signer, msg_id="batch-v1a", timestamp=int(time.time()), payload=body
    )

    with PartnerSimulator(data_dir=tmp_path, secret=whpk) as sim:
        response = requests.post(
            f"{sim.url}/exposures",
            data=body,
            headers={**headers, "Content-Type": "application/x-ndjson"},
            timeout=10,
        )

    assert response.status_code == 200, response.text
    assert sim.stats().batch_ids == ["batch-v1a"]


def _pull_partner_with_v1a_key() -> tuple[str, str, str]:
    """A pull partner holding only a v1a key, with one ready batch: (api key, whpk_, batch id)."""
    partner, _secret = partner_create(slug="v1a-puller", name="V1a puller", gvl_vendor_id=1)
    CampaignAssignment.objects.create(
        partner=partner, campaign_id="cmp-1", starts_on=datetime(2026, 1, 1).date()
    )
    issued = signing_key_rotate(partner=partner, algorithm=SigningSecret.Algorithm.ED25519)
    partner.signing_secrets.filter(algorithm=SigningSecret.Algorithm.HMAC_SHA256).update(
        revoked_at=issued.key.created_at
    )
    batch = make_ready_batch(feed=make_feed(partner=partner, name="pull", mode=Feed.Mode.PULL))
    return make_api_key(partner=partner), issued.public_key, str(batch.pk)


@pytest.mark.parametrize("right_key", [True, False])
def test_the_puller_verifies_v1a_downloads_from_the_real_partner_api(
    transactional_db: None, live_server: Any, tmp_path: Path, right_key: bool
) -> None:
    api_key, public_key, batch_id = _pull_partner_with_v1a_key()
    puller = Puller(
        store=BatchStore(data_dir=tmp_path),
        gateway_url=live_server.url,
        api_key=api_key,
        secret=public_key if right_key else _key_pair()[1],
    )

    assert puller.poll_once() == ([batch_id] if right_key else [])
