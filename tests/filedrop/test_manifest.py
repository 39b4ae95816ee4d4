"""Paths, the manifest and its detached signature, checked as a partner would check them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from gateway.delivery.signers import partner_signer
from gateway.filedrop.layout import file_layout
from gateway.filedrop.manifest import Manifest, signature_file, signature_file_parse
from gateway.simulator.signatures import SignatureError, signature_verify
from partners.models import Partner, SigningSecret
from partners.services import signing_key_rotate, signing_secret_current

BATCH_ID = "5b0c6e4e-3d0a-4f51-8d0f-0d5c2e7f9a11"
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def manifest(**overrides: object) -> Manifest:
    fields: dict[str, object] = {
        "batch_id": BATCH_ID,
        "partner": "nielsen",
        "feed": "hourly",
        "sequence": 7,
        "kind": "window",
        "window_start": datetime(2026, 11, 24, 9, tzinfo=UTC),
        "window_end": datetime(2026, 11, 24, 10, tzinfo=UTC),
        "row_count": 3,
        "file_name": f"{BATCH_ID}.jsonl.gz",
        "file_path": f"in/hourly/2026/11/24/09/{BATCH_ID}.jsonl.gz",
        "format": "ndjson",
        "byte_size": 123,
        "sha256": "ab" * 32,
        "created_at": NOW,
    }
    fields.update(overrides)
    return Manifest(**fields)  # type: ignore[arg-type]


def test_files_go_to_prefix_feed_and_the_utc_hour():
    layout = file_layout(
        prefix="/in/gateway/",
        feed_name="hourly",
        batch_id=BATCH_ID,
        file_format="parquet",
        hour=datetime.fromisoformat("2026-11-24T10:59:00+01:00"),
    )

    assert layout.data == f"in/gateway/hourly/2026/11/24/09/{BATCH_ID}.parquet"
    assert layout.manifest == f"in/gateway/hourly/2026/11/24/09/{BATCH_ID}.manifest.json"
    assert layout.signature == f"in/gateway/hourly/2026/11/24/09/{BATCH_ID}.manifest.json.sig"


def test_an_empty_prefix_starts_at_the_feed_and_ndjson_files_are_jsonl_gz():
    layout = file_layout(
        prefix="", feed_name="hourly", batch_id=BATCH_ID, file_format="ndjson", hour=NOW
    )

    assert layout.data == f"hourly/2026/11/24/10/{BATCH_ID}.jsonl.gz"


@pytest.mark.parametrize(
    ("file_format", "name"), [("ndjson", "jsonl.gz.jwe"), ("parquet", "parquet.jwe")]
)
def test_an_encrypted_data_file_has_a_jwe_suffix_and_the_same_manifest_names(file_format, name):
    layout = file_layout(
        prefix="in",
        feed_name="hourly",
        batch_id=BATCH_ID,
        file_format=file_format,
        hour=NOW,
        encrypted=True,
    )

    assert layout.data == f"in/hourly/2026/11/24/10/{BATCH_ID}.{name}"
    assert layout.manifest == f"in/hourly/2026/11/24/10/{BATCH_ID}.manifest.json"
    assert layout.signature == f"in/hourly/2026/11/24/10/{BATCH_ID}.manifest.json.sig"


def test_a_prefix_cannot_climb_out_of_the_destination():
    with pytest.raises(ValueError, match=r"\.\."):
        file_layout(
            prefix="in/../../etc", feed_name="f", batch_id=BATCH_ID, file_format="ndjson", hour=NOW
        )


def test_the_manifest_is_sorted_json_with_utc_times():
    document = json.loads(manifest().to_bytes())

    assert document == {
        "manifest_version": 1,
        "batch_id": BATCH_ID,
        "partner": "nielsen",
        "feed": "hourly",
        "sequence": 7,
        "kind": "window",
        "window_start": "2026-11-24T09:00:00Z",
        "window_end": "2026-11-24T10:00:00Z",
        "row_count": 3,
        "file_name": f"{BATCH_ID}.jsonl.gz",
        "file_path": f"in/hourly/2026/11/24/09/{BATCH_ID}.jsonl.gz",
        "format": "ndjson",
        "byte_size": 123,
        "sha256": "ab" * 32,
        "created_at": "2026-11-24T10:30:00Z",
    }
    assert list(document) == sorted(document)


def test_the_manifest_of_an_encrypted_file_says_how_it_is_encrypted():
    encryption = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": "partner-2026-11"}

    content = manifest(file_name=f"{BATCH_ID}.jsonl.gz.jwe", encryption=encryption).to_bytes()

    document = json.loads(content)
    assert document["encryption"] == encryption
    assert document["file_name"] == f"{BATCH_ID}.jsonl.gz.jwe"
    assert list(document) == sorted(document)
    assert content.decode().endswith("}\n")


def test_the_manifest_of_one_part_of_a_claim_says_which_part_it_is():
    parts = {"part": 2, "part_count": 3, "first_part": "0" * 8 + "-0000-0000-0000-" + "0" * 12}

    document = json.loads(manifest(parts=parts).to_bytes())

    assert {name: document[name] for name in parts} == parts
    assert list(document) == sorted(document)
    assert "parts" not in document
    # A claim in one part (the usual case) keeps the manifest it always had.
    assert "part" not in json.loads(manifest().to_bytes())


@pytest.mark.django_db
def test_the_signature_file_verifies_with_the_partners_secret_and_a_standard_webhooks_library(
    partner: Partner,
):
    content = manifest().to_bytes()
    timestamp = int(datetime.now(tz=UTC).timestamp())
    signer = partner_signer(partner=partner, timestamp=timestamp)

    signed = signature_file(signer=signer, batch_id=BATCH_ID, timestamp=timestamp, manifest=content)

    headers = signature_file_parse(signed)
    assert headers["webhook-id"] == BATCH_ID
    assert headers["webhook-timestamp"] == str(timestamp)
    secret = signing_secret_current(partner_id=partner.pk)
    Webhook(secret).verify(content, headers)  # the reference library; raises if wrong
    signature_verify(secret=secret, body=content.decode(), headers=headers)


@pytest.mark.django_db
def test_a_changed_manifest_fails_verification(partner: Partner):
    content = manifest().to_bytes()
    timestamp = int(datetime.now(tz=UTC).timestamp())
    signer = partner_signer(partner=partner, timestamp=timestamp)
    headers = signature_file_parse(
        signature_file(signer=signer, batch_id=BATCH_ID, timestamp=timestamp, manifest=content)
    )
    secret = signing_secret_current(partner_id=partner.pk)

    # A file may be picked up hours after it was signed: partners skip the age check.
    signature_verify(secret=secret, body=content.decode(), headers=headers, check_timestamp=False)
    tampered = manifest(sha256="cd" * 32).to_bytes()
    with pytest.raises(SignatureError):
        signature_verify(
            secret=secret, body=tampered.decode(), headers=headers, check_timestamp=False
        )


@pytest.mark.django_db
def test_an_ed25519_key_adds_a_v1a_line_that_verifies_with_its_public_key(partner: Partner):
    issued = signing_key_rotate(partner=partner, algorithm=SigningSecret.Algorithm.ED25519)
    content = manifest().to_bytes()
    timestamp = int(datetime.now(tz=UTC).timestamp())
    signer = partner_signer(partner=partner, timestamp=timestamp)

    headers = signature_file_parse(
        signature_file(signer=signer, batch_id=BATCH_ID, timestamp=timestamp, manifest=content)
    )

    assert {entry.split(",")[0] for entry in headers["webhook-signature"].split()} == {"v1", "v1a"}
    signature_verify(secret=issued.public_key, body=content.decode(), headers=headers)


def test_a_signature_file_without_its_headers_is_refused():
    with pytest.raises(ValueError, match="webhook-signature"):
        signature_file_parse(b"webhook-id: x\nwebhook-timestamp: 1\n")
