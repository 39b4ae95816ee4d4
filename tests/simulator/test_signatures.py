"""Signature checks through the standardwebhooks package, strict and age-tolerant."""

from __future__ import annotations

import time

import pytest

from gateway.simulator.signatures import SignatureError, signature_verify
from tests.simulator.conftest import new_secret, sign


def _headers(secret: str, body: str, *, timestamp: int, msg_id: str = "m1") -> dict[str, str]:
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(secret, msg_id=msg_id, timestamp=timestamp, body=body.encode()),
    }


def test_a_fresh_signature_over_the_body_verifies() -> None:
    secret = new_secret()
    headers = _headers(secret, "line\n", timestamp=int(time.time()))

    signature_verify(secret=secret, body="line\n", headers=headers)


def test_header_names_are_matched_case_insensitively() -> None:
    secret = new_secret()
    headers = {k.upper(): v for k, v in _headers(secret, "x", timestamp=int(time.time())).items()}

    signature_verify(secret=secret, body="x", headers=headers)


def test_an_old_signature_fails_the_strict_check_but_passes_the_age_tolerant_one() -> None:
    secret = new_secret()
    headers = _headers(secret, "x", timestamp=int(time.time()) - 86400)

    with pytest.raises(SignatureError, match="too old"):
        signature_verify(secret=secret, body="x", headers=headers)
    signature_verify(secret=secret, body="x", headers=headers, check_timestamp=False)


@pytest.mark.parametrize("check_timestamp", [True, False])
def test_a_changed_body_fails_both_checks(check_timestamp: bool) -> None:
    secret = new_secret()
    headers = _headers(secret, "x", timestamp=int(time.time()))

    with pytest.raises(SignatureError):
        signature_verify(secret=secret, body="y", headers=headers, check_timestamp=check_timestamp)


@pytest.mark.parametrize("signature", ["v1,@@@", "v2,abc", "nonsense", "v1"])
def test_the_age_tolerant_check_rejects_malformed_signatures(signature: str) -> None:
    secret = new_secret()
    headers = _headers(secret, "x", timestamp=int(time.time())) | {"Webhook-Signature": signature}

    with pytest.raises(SignatureError):
        signature_verify(secret=secret, body="x", headers=headers, check_timestamp=False)


def test_the_age_tolerant_check_rejects_a_non_numeric_timestamp() -> None:
    secret = new_secret()
    headers = _headers(secret, "x", timestamp=1) | {"Webhook-Timestamp": "soon"}

    with pytest.raises(SignatureError):
        signature_verify(secret=secret, body="x", headers=headers, check_timestamp=False)
