"""Signing keys: v1 and v1a, rotation with an overlap, revocation, encryption at rest."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import IntegrityError, connection
from standardwebhooks.webhooks import Webhook

from gateway.delivery.signers import LocalSigner, NoSigningKey, signed_headers
from partners.models import Partner, SigningSecret
from partners.secrets import SecretDecryptionError, decrypt
from partners.services import (
    signer_from_database,
    signing_key_retire,
    signing_key_revoke,
    signing_key_rotate,
    signing_key_state,
    signing_keys_rotate,
    signing_secret_current,
    signing_secret_rotate,
)
from tests.factories import make_partner

pytestmark = pytest.mark.django_db

V1, V1A = SigningSecret.Algorithm.HMAC_SHA256, SigningSecret.Algorithm.ED25519
State = SigningSecret.State
# After the fixture partner's first key (created at the real "now") starts signing.
T0 = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
PAYLOAD = b'{"event_id":"evt-1"}\n'


@pytest.fixture
def partner() -> Partner:
    return make_partner(slug="nielsen")


def _signatures_at(partner: Partner, at: datetime) -> list[str]:
    signer = signer_from_database(partner=partner, at=at)
    return signer.sign(msg_id="batch-1", timestamp=int(at.timestamp()), payload=PAYLOAD)


def _v1_verifies(secret: str, signatures: list[str], at: datetime) -> bool:
    # The reference library's own HMAC; its verify() would also check the
    # timestamp against the real clock, and these tests move time freely.
    expected = Webhook(secret).sign("batch-1", at, PAYLOAD.decode())
    return expected in signatures


def _v1a_verifies(public_key: str, signatures: list[str], at: datetime) -> bool:
    verifier = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_") :]))
    content = f"batch-1.{int(at.timestamp())}.".encode() + PAYLOAD
    for value in signatures:
        version, _, encoded = value.partition(",")
        if version != "v1a":
            continue
        try:
            verifier.verify(base64.b64decode(encoded), content)
            return True
        except Exception:
            continue
    return False


def test_a_new_partner_gets_one_active_v1_key_with_a_public_id(partner: Partner) -> None:
    [key] = partner.signing_secrets.all()

    assert key.algorithm == V1
    assert len(key.key_id) == 16
    assert key.public_key == ""
    assert signing_key_state(key=key, at=T0 + timedelta(days=400)) == State.ACTIVE


def test_a_v1a_key_returns_its_public_key_and_never_its_private_key(partner: Partner) -> None:
    issued = signing_key_rotate(partner=partner, algorithm=V1A, now=T0)

    assert issued.secret == ""
    assert issued.public_key.startswith("whpk_")
    assert issued.key.public_key == issued.public_key
    assert decrypt(issued.key.secret_encrypted).startswith("whsk_")


@pytest.mark.parametrize("algorithm", [V1, V1A])
def test_the_database_column_never_holds_the_plaintext_key(
    partner: Partner, algorithm: str
) -> None:
    issued = signing_key_rotate(partner=partner, algorithm=algorithm, now=T0)
    plaintext = decrypt(issued.key.secret_encrypted)
    raw_key = plaintext.split("_", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_encrypted FROM partners_signingsecret WHERE id = %s", [issued.key.pk]
        )
        [stored] = cursor.fetchone()

    assert plaintext not in stored and raw_key not in stored
    assert base64.b64decode(raw_key).hex() not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token


def test_both_keys_sign_during_the_overlap_then_only_the_new_one(partner: Partner) -> None:
    old = signing_secret_current(partner_id=partner.pk)
    new = signing_secret_rotate(partner=partner, overlap=timedelta(hours=24), now=T0)

    during = _signatures_at(partner, T0 + timedelta(hours=23, minutes=59, seconds=59))
    after = _signatures_at(partner, T0 + timedelta(hours=24))

    assert len(during) == 2
    assert _v1_verifies(old, during, T0 + timedelta(hours=23, minutes=59, seconds=59))
    assert _v1_verifies(new, during, T0 + timedelta(hours=23, minutes=59, seconds=59))
    assert len(after) == 1
    assert _v1_verifies(new, after, T0 + timedelta(hours=24))
    assert not _v1_verifies(old, after, T0 + timedelta(hours=24))


def test_the_overlapping_header_verifies_with_either_secret_in_the_reference_library(
    partner: Partner,
) -> None:
    from django.utils import timezone

    old = signing_secret_current(partner_id=partner.pk)
    new = signing_secret_rotate(partner=partner, overlap=timedelta(hours=1))
    now = int(timezone.now().timestamp())
    signer = signer_from_database(partner=partner, at=datetime.fromtimestamp(now, tz=UTC))
    headers = signed_headers(signer=signer, msg_id="batch-1", timestamp=now, payload=PAYLOAD)

    for secret in (old, new):
        Webhook(secret).verify(PAYLOAD, headers, json_parse=False)


def test_key_states_follow_the_rotation(partner: Partner) -> None:
    [old] = partner.signing_secrets.all()
    new = signing_key_rotate(partner=partner, overlap=timedelta(hours=2), now=T0).key
    old.refresh_from_db()

    assert old.retires_at == T0 + timedelta(hours=2)
    assert signing_key_state(key=old, at=T0 + timedelta(hours=1)) == State.OVERLAP
    assert signing_key_state(key=old, at=T0 + timedelta(hours=2)) == State.RETIRED
    assert signing_key_state(key=new, at=T0 - timedelta(seconds=1)) == State.PENDING
    assert signing_key_state(key=new, at=T0 + timedelta(hours=2)) == State.ACTIVE


def test_the_overlap_defaults_to_the_setting(partner: Partner, settings) -> None:
    settings.SIGNING_KEY_OVERLAP_HOURS = 5
    [old] = partner.signing_secrets.all()

    signing_secret_rotate(partner=partner, now=T0)

    old.refresh_from_db()
    assert old.retires_at == T0 + timedelta(hours=5)


def test_a_zero_overlap_stops_the_old_key_in_the_same_second(partner: Partner) -> None:
    old = signing_secret_current(partner_id=partner.pk)
    # A rotation part-way through a second still switches keys on its boundary:
    # webhook-timestamp alone says which keys signed.
    new = signing_secret_rotate(
        partner=partner, overlap=timedelta(0), now=T0 + timedelta(microseconds=600_000)
    )

    signatures = _signatures_at(partner, T0)

    assert len(signatures) == 1
    assert _v1_verifies(new, signatures, T0)
    assert not _v1_verifies(old, signatures, T0)


def test_rotating_never_extends_a_retirement_already_set(partner: Partner) -> None:
    [first] = partner.signing_secrets.all()
    signing_key_rotate(partner=partner, overlap=timedelta(hours=1), now=T0)
    signing_key_rotate(partner=partner, overlap=timedelta(hours=24), now=T0)

    first.refresh_from_db()
    assert first.retires_at == T0 + timedelta(hours=1)


def test_revoked_keys_never_sign_even_during_the_overlap(partner: Partner) -> None:
    [old] = partner.signing_secrets.all()
    old_secret = decrypt(old.secret_encrypted)
    new = signing_secret_rotate(partner=partner, overlap=timedelta(hours=24), now=T0)

    signing_key_revoke(key=old)
    signatures = _signatures_at(partner, T0 + timedelta(hours=1))

    assert len(signatures) == 1
    assert not _v1_verifies(old_secret, signatures, T0 + timedelta(hours=1))
    assert _v1_verifies(new, signatures, T0 + timedelta(hours=1))
    assert signing_key_state(key=old, at=T0) == State.REVOKED


def test_a_partner_with_every_key_revoked_has_no_signer(partner: Partner) -> None:
    for key in partner.signing_secrets.all():
        signing_key_revoke(key=key)

    with pytest.raises(NoSigningKey):
        signer_from_database(partner=partner, at=T0)
    with pytest.raises(SigningSecret.DoesNotExist):
        signing_secret_current(partner_id=partner.pk)


def test_a_v1a_key_signs_alongside_the_v1_key_it_does_not_replace(partner: Partner) -> None:
    secret = signing_secret_current(partner_id=partner.pk)
    issued = signing_key_rotate(partner=partner, algorithm=V1A, now=T0)

    signatures = _signatures_at(partner, T0 + timedelta(days=30))

    assert sorted(s.split(",")[0] for s in signatures) == ["v1", "v1a"]
    assert _v1_verifies(secret, signatures, T0 + timedelta(days=30))
    assert _v1a_verifies(issued.public_key, signatures, T0 + timedelta(days=30))
    # The v1 secret accessor is about v1 only.
    assert signing_secret_current(partner_id=partner.pk) == secret


def test_rotating_a_v1a_key_overlaps_the_old_v1a_key(partner: Partner) -> None:
    first = signing_key_rotate(partner=partner, algorithm=V1A, now=T0)
    second = signing_key_rotate(
        partner=partner, algorithm=V1A, overlap=timedelta(hours=1), now=T0 + timedelta(days=1)
    )

    during = _signatures_at(partner, T0 + timedelta(days=1, minutes=30))
    after = _signatures_at(partner, T0 + timedelta(days=1, hours=1))

    assert _v1a_verifies(first.public_key, during, T0 + timedelta(days=1, minutes=30))
    assert _v1a_verifies(second.public_key, during, T0 + timedelta(days=1, minutes=30))
    assert not _v1a_verifies(first.public_key, after, T0 + timedelta(days=1, hours=1))
    assert _v1a_verifies(second.public_key, after, T0 + timedelta(days=1, hours=1))


def test_rotating_every_scheme_rotates_each_one_the_partner_uses(partner: Partner) -> None:
    signing_key_rotate(partner=partner, algorithm=V1A, now=T0)

    issued = signing_keys_rotate(partner=partner, now=T0 + timedelta(days=1))

    assert sorted(i.key.algorithm for i in issued) == [V1, V1A]
    assert [bool(i.secret) for i in sorted(issued, key=lambda i: i.key.algorithm)] == [True, False]


def test_retiring_a_key_stops_it_after_the_overlap(partner: Partner) -> None:
    issued = signing_key_rotate(partner=partner, algorithm=V1A, now=T0)
    [v1_key] = partner.signing_secrets.filter(algorithm=V1)

    signing_key_retire(key=v1_key, overlap=timedelta(hours=2), now=T0)
    after = _signatures_at(partner, T0 + timedelta(hours=2))

    assert [s.split(",")[0] for s in after] == ["v1a"]
    assert _v1a_verifies(issued.public_key, after, T0 + timedelta(hours=2))


def test_an_unreadable_key_does_not_stop_the_others_signing(partner: Partner) -> None:
    [old] = partner.signing_secrets.all()
    signing_secret_rotate(partner=partner, overlap=timedelta(hours=1), now=T0)
    foreign = Fernet(Fernet.generate_key()).encrypt(b"whsec_AAAA").decode()
    SigningSecret.objects.filter(pk=old.pk).update(secret_encrypted=foreign)

    signer = signer_from_database(partner=partner, at=T0)

    assert isinstance(signer, LocalSigner)
    assert old.key_id not in signer.key_ids and len(signer.key_ids) == 1


def test_with_no_readable_key_the_decryption_error_surfaces(partner: Partner) -> None:
    foreign = Fernet(Fernet.generate_key()).encrypt(b"whsec_AAAA").decode()
    partner.signing_secrets.update(secret_encrypted=foreign)

    with pytest.raises(SecretDecryptionError):
        signer_from_database(partner=partner, at=T0 + timedelta(days=1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithm": "v2"}, "unknown signing algorithm"),
        ({"overlap": timedelta(hours=-1)}, "cannot be negative"),
    ],
)
def test_bad_rotation_arguments_are_refused(partner: Partner, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        signing_key_rotate(partner=partner, **kwargs)


def test_the_database_refuses_a_v1a_key_without_a_public_key(partner: Partner) -> None:
    with pytest.raises(IntegrityError):
        SigningSecret.objects.create(
            partner=partner, key_id="x1", algorithm=V1A, secret_encrypted="x"
        )


def test_the_default_signer_signs_with_the_keys_loaded_with_the_partner(
    partner: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push send's keys came with its batch: the signer reads nothing more, and says the same."""
    signing_secret_rotate(partner=partner, overlap=timedelta(hours=1), now=T0)
    from_database = signer_from_database(partner=partner, at=T0)
    partner.unrevoked_signing_keys = list(
        SigningSecret.objects.filter(partner=partner, revoked_at=None).order_by(
            "-created_at", "-pk"
        )
    )

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the keys were loaded already")

    monkeypatch.setattr("gateway.delivery.statements.rows_read", no_read)
    loaded = signer_from_database(partner=partner, at=T0)

    assert loaded.key_ids == from_database.key_ids and len(loaded.key_ids) == 2
    assert loaded.sign(msg_id="m", timestamp=1, payload=PAYLOAD) == from_database.sign(
        msg_id="m", timestamp=1, payload=PAYLOAD
    )
    # Loaded and none unrevoked: no key, without a second look.
    partner.unrevoked_signing_keys = []
    with pytest.raises(NoSigningKey):
        signer_from_database(partner=partner, at=T0)
