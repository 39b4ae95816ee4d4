from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from partners.secrets import (
    SecretDecryptionError,
    decrypt,
    encrypt,
    new_whsec,
    token_issue,
    token_matches,
    token_prefix,
)


def test_encrypted_secrets_round_trip_and_do_not_contain_the_plaintext() -> None:
    ciphertext = encrypt("whsec_c2VjcmV0")
    assert "c2VjcmV0" not in ciphertext
    assert decrypt(ciphertext) == "whsec_c2VjcmV0"


def test_keys_can_be_rotated_old_ciphertext_still_decrypts() -> None:
    from django.conf import settings

    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    ciphertext = encrypt("value")
    new_key = Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
        assert decrypt(ciphertext) == "value"


def test_decrypting_with_the_wrong_key_raises_a_clear_error() -> None:
    ciphertext = encrypt("value")
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]),
        pytest.raises(SecretDecryptionError),
    ):
        decrypt(ciphertext)


def test_signing_secrets_use_the_standard_webhooks_format() -> None:
    secret = new_whsec()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_issued_tokens_are_found_by_prefix_and_proven_by_hash() -> None:
    issued = token_issue("mgk")
    assert token_prefix(issued.plaintext, "mgk") == issued.prefix
    assert token_matches(issued.plaintext, issued.digest)
    assert not token_matches(issued.plaintext + "x", issued.digest)
    assert issued.digest not in issued.plaintext


@pytest.mark.parametrize("text", ["", "mgk", "mgk_short_x", "mgi_0123456789ab_x", "nonsense"])
def test_tokens_of_the_wrong_shape_have_no_prefix(text: str) -> None:
    assert token_prefix(text, "mgk") is None
