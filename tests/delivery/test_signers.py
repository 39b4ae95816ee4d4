"""The Signer interface: the in-process signer, and a factory plugged in by setting."""

from __future__ import annotations

import base64
import time
import tracemalloc
from datetime import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from standardwebhooks.webhooks import Webhook

from gateway.delivery.signers import (
    LocalSigner,
    NoSigningKey,
    SigningKeyMaterial,
    partner_signer,
    signed_headers,
    signs_in_pieces,
    stream_signed_headers,
)
from gateway.delivery.signing import ed25519_key_pair
from partners.models import Partner

WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()
WHSK, _WHPK = ed25519_key_pair(b"s" * 32)
OTHER_WHSEC = "whsec_" + base64.b64encode(b"o" * 24).decode()


class FakeKmsSigner:
    """What a KMS-backed signer looks like from the outside: key ids and signatures."""

    def __init__(self, partner_slug: str, at: datetime) -> None:
        self.partner_slug, self.at = partner_slug, at

    @property
    def key_ids(self) -> tuple[str, ...]:
        return ("kms-1",)

    def sign(self, *, msg_id: str, timestamp: int, payload: bytes) -> list[str]:
        return [f"v1a,{self.partner_slug}-{timestamp}"]


def fake_kms_factory(*, partner: Partner, at: datetime) -> FakeKmsSigner:
    # A KMS names keys its own way: here by the partner's slug.
    return FakeKmsSigner(partner.slug, at)


def test_a_local_signer_returns_one_signature_per_key_in_key_order() -> None:
    signer = LocalSigner(
        keys=(
            SigningKeyMaterial(key_id="new", secret=WHSK),
            SigningKeyMaterial(key_id="old", secret=WHSEC),
        )
    )

    signatures = signer.sign(msg_id="b", timestamp=1, payload=b"x")

    assert signer.key_ids == ("new", "old")
    assert [s.split(",")[0] for s in signatures] == ["v1a", "v1"]


def test_a_local_signer_without_keys_cannot_exist() -> None:
    with pytest.raises(NoSigningKey):
        LocalSigner(keys=())


def test_key_material_never_shows_the_secret_in_its_repr() -> None:
    material = SigningKeyMaterial(key_id="k1", secret=WHSEC)

    assert WHSEC not in repr(material)
    assert WHSEC not in repr(LocalSigner(keys=(material,)))


def test_signed_headers_join_every_signature_with_spaces() -> None:
    signer = LocalSigner(
        keys=(SigningKeyMaterial(key_id="a", secret=WHSEC), SigningKeyMaterial("b", WHSK))
    )

    headers = signed_headers(signer=signer, msg_id="b-1", timestamp=9, payload=b"x")

    assert headers["webhook-id"] == "b-1"
    assert headers["webhook-timestamp"] == "9"
    assert len(headers["webhook-signature"].split(" ")) == 2


def test_the_signer_factory_is_the_one_the_setting_names(settings) -> None:
    settings.SIGNER_FACTORY = f"{__name__}.fake_kms_factory"

    signer = partner_signer(partner=Partner(pk=7, slug="acme"), timestamp=1_790_000_000)

    assert isinstance(signer, FakeKmsSigner)
    assert (signer.partner_slug, int(signer.at.timestamp())) == ("acme", 1_790_000_000)
    assert (
        signed_headers(signer=signer, msg_id="m", timestamp=3, payload=b"")["webhook-signature"]
        == "v1a,acme-3"
    )


@pytest.mark.django_db
def test_without_the_setting_the_database_signer_signs(settings) -> None:
    from tests.factories import make_partner

    if hasattr(settings, "SIGNER_FACTORY"):
        del settings.SIGNER_FACTORY
    partner = make_partner()

    signer = partner_signer(partner=partner, timestamp=int(time.time()))

    assert isinstance(signer, LocalSigner)
    assert signer.key_ids == tuple(partner.signing_secrets.values_list("key_id", flat=True))


# --- Signing a payload given in pieces ---------------------------------------------------


def _pieces(payload: bytes, size: int) -> list[bytes]:
    return [payload[i : i + size] for i in range(0, len(payload), size)]


@pytest.mark.parametrize("size", [1, 7, 4096, 10_000])
def test_signing_in_pieces_gives_the_signatures_of_the_whole(size: int) -> None:
    signer = LocalSigner(
        keys=(SigningKeyMaterial("a", WHSEC), SigningKeyMaterial("b", OTHER_WHSEC))
    )
    payload = b"".join(b'{"n":%d}\n' % n for n in range(1_000))

    whole = signer.sign(msg_id="b-1", timestamp=9, payload=payload)
    streamed = signer.sign_chunks(msg_id="b-1", timestamp=9, chunks=_pieces(payload, size))

    assert streamed == whole
    assert len(set(streamed)) == 2


def test_pieces_are_read_once_even_for_several_keys() -> None:
    signer = LocalSigner(keys=(SigningKeyMaterial("a", WHSEC), SigningKeyMaterial("b", WHSEC)))
    payload = b"x" * 1_000

    streamed = signer.sign_chunks(msg_id="m", timestamp=1, chunks=iter(_pieces(payload, 100)))

    assert streamed == signer.sign(msg_id="m", timestamp=1, payload=payload)


def test_with_an_ed25519_key_in_use_the_pieces_are_gathered_and_signed_whole() -> None:
    # Ed25519 has no streaming form: the v1a signature is of the whole content.
    signer = LocalSigner(keys=(SigningKeyMaterial("new", WHSK), SigningKeyMaterial("old", WHSEC)))
    payload = b"line\n" * 500

    streamed = signer.sign_chunks(msg_id="m", timestamp=5, chunks=iter(_pieces(payload, 64)))

    assert streamed == signer.sign(msg_id="m", timestamp=5, payload=payload)
    assert [s.split(",")[0] for s in streamed] == ["v1a", "v1"]


def test_a_large_payload_signed_with_a_v1a_key_is_gathered_on_disk_not_in_memory() -> None:
    signer = LocalSigner(
        keys=(
            SigningKeyMaterial("old", WHSEC),
            SigningKeyMaterial("new", WHSK),
            SigningKeyMaterial("other", OTHER_WHSEC),
        )
    )
    piece = b'{"event_id":"e","campaign_id":"cmp-1"}\n' * 6_000  # about 230 KB
    count = 130  # about 30 MB in all

    tracemalloc.start()
    try:
        streamed = signer.sign_chunks(msg_id="m", timestamp=7, chunks=(piece for _ in range(count)))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 * 1024 * 1024, peak  # a few pieces and the in-memory start, not 30 MB
    payload = piece * count
    assert streamed == signer.sign(msg_id="m", timestamp=7, payload=payload)
    assert [s.split(",")[0] for s in streamed] == ["v1", "v1a", "v1"]
    public = Ed25519PrivateKey.from_private_bytes(
        base64.b64decode(WHSK.removeprefix("whsk_"))
    ).public_key()
    public.verify(base64.b64decode(streamed[1].removeprefix("v1a,")), b"m.7." + payload)


def test_a_signer_without_sign_chunks_is_given_the_joined_payload() -> None:
    class WholePayloadSigner:
        key_ids = ("kms-1",)

        def sign(self, *, msg_id: str, timestamp: int, payload: bytes) -> list[str]:
            return [f"v1,{len(payload)}:{payload[:3].decode()}"]

    headers = stream_signed_headers(
        signer=WholePayloadSigner(), msg_id="m", timestamp=2, chunks=iter([b"ab", b"cd", b"e"])
    )

    assert headers["webhook-signature"] == "v1,5:abc"


def test_streamed_headers_verify_with_the_reference_implementation() -> None:
    signer = LocalSigner(keys=(SigningKeyMaterial("a", WHSEC),))
    # The reference library parses what it verified as one JSON document.
    payload = b'{"events":[' + b",".join(b'{"event_id":"e-%d"}' % n for n in range(2_000)) + b"]}"
    timestamp = int(time.time())

    headers = stream_signed_headers(
        signer=signer, msg_id="b-7", timestamp=timestamp, chunks=_pieces(payload, 1_000)
    )

    Webhook(WHSEC).verify(payload, headers)


class StreamingKmsSigner(FakeKmsSigner):
    def sign_chunks(self, *, msg_id: str, timestamp: int, chunks) -> list[str]:
        return self.sign(msg_id=msg_id, timestamp=timestamp, payload=b"".join(chunks))


class WholeMessageKmsSigner(StreamingKmsSigner):
    holds_whole_payload = True


def test_which_signers_sign_in_pieces_without_holding_the_payload() -> None:
    hmac_only = LocalSigner(keys=(SigningKeyMaterial(key_id="a", secret=WHSEC),))
    with_v1a = LocalSigner(
        keys=(
            SigningKeyMaterial(key_id="a", secret=WHSEC),
            SigningKeyMaterial(key_id="b", secret=WHSK),
        )
    )

    assert signs_in_pieces(hmac_only)
    assert not signs_in_pieces(with_v1a)
    assert not signs_in_pieces(FakeKmsSigner(1, datetime.now()))  # no sign_chunks
    assert signs_in_pieces(StreamingKmsSigner(1, datetime.now()))
    assert not signs_in_pieces(WholeMessageKmsSigner(1, datetime.now()))
