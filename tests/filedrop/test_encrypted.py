"""Encrypted file drops: a .jwe the partner checks against the signed manifest, then decrypts.

Each test reads the drop as a partner would: the manifest's signature first,
then the data file's size and hash, then decryption with the private key
(our reference ``decrypt_body``, jwcrypto, or the partner guide's own code).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import secrets
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from boto3.s3.transfer import TransferConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, x25519
from jwcrypto import jwe, jwk

from gateway.delivery.encryption import PrivateKey, decrypt_body
from gateway.delivery.models import DeliveryAttempt
from gateway.filedrop import s3, services
from gateway.filedrop.manifest import signature_file_parse
from gateway.filedrop.services import batch_upload
from gateway.simulator.signatures import signature_verify
from partners.models import Feed, Partner
from partners.services import signing_secret_current
from tests.filedrop.conftest import (
    SshServer,
    attempt_for,
    make_file_feed,
    s3_destination,
    sftp_destination,
    stored_batch,
)
from tests.filedrop.test_end_to_end import ALLOWLIST, built_and_sent

pytestmark = pytest.mark.django_db

Outcome = DeliveryAttempt.Outcome
X25519, RSA = Feed.Encryption.X25519, Feed.Encryption.RSA_OAEP_256
ALG = {X25519: "ECDH-ES", RSA: "RSA-OAEP-256"}
RECORDS = [{"event_id": f"evt-{n}", "campaign_id": "cmp-1"} for n in range(3)]
FOLDER = "incoming/gateway/hourly/2026/11/24/09"
PARTNER_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "partner-guide.md"

both_schemes = pytest.mark.parametrize("scheme", [X25519, RSA])


@cache
def private_key(scheme: str) -> PrivateKey:
    """The partner's key pair, one per scheme for the whole run: RSA generation is slow."""
    if scheme == X25519:
        return x25519.X25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(scheme: str) -> bytes:
    return private_key(scheme).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def encrypted_feed(partner: Partner, scheme: str, **fields: Any) -> Feed:
    public = (
        private_key(scheme)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    fields.setdefault("encryption_key_id", "partner-2026-11")
    return make_file_feed(
        partner=partner, encryption=scheme, encryption_public_key=public.decode(), **fields
    )


def objects(client: Any, bucket: str) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listing
    }


def checked_manifest(
    *, partner: Partner, manifest: bytes, signature: bytes, data: bytes
) -> dict[str, Any]:
    """The manifest, once its signature verifies and it describes ``data`` as uploaded."""
    signature_verify(
        secret=signing_secret_current(partner_id=partner.pk),
        body=manifest.decode(),
        headers=signature_file_parse(signature),
        check_timestamp=False,
    )
    document = json.loads(manifest)
    assert document["byte_size"] == len(data)
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    return document


def header_of(token: bytes) -> dict[str, Any]:
    protected = token.split(b".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(protected + b"=" * (-len(protected) % 4)))


def jwcrypto_decrypted(token: bytes, scheme: str) -> bytes:
    message = jwe.JWE()
    message.deserialize(token.decode("ascii"), key=jwk.JWK.from_pem(private_pem(scheme)))
    return message.payload


# --- end to end -------------------------------------------------------------------------


@both_schemes
def test_an_encrypted_ndjson_window_is_dropped_on_s3_and_the_partner_reads_it(
    partner: Partner, s3_endpoint: str, bucket: str, s3_client: Any, scheme: str
):
    feed = encrypted_feed(partner, scheme, field_allowlist=ALLOWLIST, file_path_prefix="")
    s3_destination(feed=feed, endpoint=s3_endpoint, bucket=bucket)

    batch, event_ids = built_and_sent(feed, exposures=3)

    key = f"hourly/2026/11/24/09/{batch.pk}"
    stored = objects(s3_client, bucket)
    assert sorted(stored) == sorted(
        f"{key}{suffix}" for suffix in (".jsonl.gz.jwe", ".manifest.json", ".manifest.json.sig")
    )
    token = stored[f"{key}.jsonl.gz.jwe"]
    manifest = checked_manifest(
        partner=partner,
        manifest=stored[f"{key}.manifest.json"],
        signature=stored[f"{key}.manifest.json.sig"],
        data=token,
    )
    assert (manifest["file_name"], manifest["file_path"], manifest["format"]) == (
        f"{batch.pk}.jsonl.gz.jwe",
        f"{key}.jsonl.gz.jwe",
        "ndjson",
    )
    assert manifest["encryption"] == {
        "alg": ALG[scheme],
        "enc": "A256GCM",
        "kid": "partner-2026-11",
    }
    assert manifest["row_count"] == 3
    head = s3_client.head_object(Bucket=bucket, Key=f"{key}.jsonl.gz.jwe")
    assert head["ContentType"] == "application/jose"
    header = header_of(token)
    assert (header["alg"], header["cty"], header["kid"]) == (
        ALG[scheme],
        "application/gzip",
        "partner-2026-11",
    )
    compressed = decrypt_body(token, private_key(scheme))
    assert jwcrypto_decrypted(token, scheme) == compressed
    # The plaintext is the very file a clear feed gets: the stored gzip body.
    assert hashlib.sha256(gzip.decompress(compressed)).hexdigest() == batch.body_sha256
    records = [json.loads(line) for line in gzip.decompress(compressed).splitlines()]
    assert sorted(record["event_id"] for record in records) == sorted(event_ids)


def _guide_code(section: str, marker: str) -> str:
    guide = PARTNER_GUIDE.read_text(encoding="utf-8")
    text = re.split(r"\n##+ ", guide.split(section, 1)[1], maxsplit=1)[0]
    [code] = [
        block
        for block in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
        if marker in block
    ]
    return code


def partner_guide_namespace() -> dict[str, Any]:
    """The partner guide's helpers, exactly as printed: verify, check and decrypt a drop."""
    namespace: dict[str, Any] = {}
    for section, marker in [
        ("## Encrypted bodies", "def content_key"),
        ("### Verifying a drop", "def verified_manifest"),
        ("### Encrypted files", "def decrypt_file"),
    ]:
        code = _guide_code(section, marker)
        exec(compile(code, str(PARTNER_GUIDE), "exec"), namespace)
    return namespace


def test_an_encrypted_window_on_sftp_is_read_with_the_partner_guides_code(
    partner: Partner, sshd: SshServer, sftp_root: Path, tmp_path: Path
):
    feed = encrypted_feed(partner, X25519, field_allowlist=ALLOWLIST)
    sftp_destination(feed=feed, server=sshd, directory=sftp_root)
    batch, event_ids = built_and_sent(feed, exposures=4)
    folder = sftp_root / FOLDER
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        f"{batch.pk}{suffix}"
        for suffix in (".jsonl.gz.jwe", ".manifest.json", ".manifest.json.sig")
    )

    # The guide's example, run as printed, with the partner's PEM key.
    namespace = partner_guide_namespace()
    namespace.update(
        folder=folder,
        batch_id=str(batch.pk),
        secret=signing_secret_current(partner_id=partner.pk),
        private_key=serialization.load_pem_private_key(private_pem(X25519), password=None),
        workdir=tmp_path,
    )
    usage = _guide_code("### Encrypted files", "decrypt_file(data_file")
    exec(compile(usage, str(PARTNER_GUIDE), "exec"), namespace)

    data_file = namespace["data_file"]
    assert data_file == tmp_path / f"{batch.pk}.jsonl.gz"
    assert [path.name for path in tmp_path.iterdir()] == [data_file.name]  # no .part left
    records = [json.loads(line) for line in gzip.decompress(data_file.read_bytes()).splitlines()]
    assert sorted(record["event_id"] for record in records) == sorted(event_ids)
    assert namespace["document"]["encryption"]["alg"] == "ECDH-ES"


@both_schemes
def test_an_encrypted_parquet_batch_decrypts_to_the_parquet_file(
    partner: Partner, sshd: SshServer, sftp_root: Path, tmp_path: Path, scheme: str
):
    feed = encrypted_feed(
        partner, scheme, format=Feed.Format.PARQUET, field_allowlist=["event_id", "campaign_id"]
    )
    sftp_destination(feed=feed, server=sshd, directory=sftp_root)
    batch = stored_batch(feed=feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.SUCCEEDED, result.error
    folder = sftp_root / FOLDER
    token = (folder / f"{batch.pk}.parquet.jwe").read_bytes()
    manifest = checked_manifest(
        partner=partner,
        manifest=(folder / f"{batch.pk}.manifest.json").read_bytes(),
        signature=(folder / f"{batch.pk}.manifest.json.sig").read_bytes(),
        data=token,
    )
    assert manifest["format"] == "parquet"
    assert manifest["encryption"]["alg"] == ALG[scheme]
    assert header_of(token)["cty"] == "application/vnd.apache.parquet"
    parquet = decrypt_body(token, private_key(scheme))
    # For Parquet feeds the batch's own hash is the clear file's.
    assert hashlib.sha256(parquet).hexdigest() == batch.body_sha256
    assert pq.read_table(io.BytesIO(parquet)).to_pylist() == RECORDS
    # The guide's streaming decryption gives the same file.
    decrypt_file = partner_guide_namespace()["decrypt_file"]
    decrypt_file(
        folder / f"{batch.pk}.parquet.jwe", tmp_path / "batch.parquet", private_key(scheme)
    )
    assert (tmp_path / "batch.parquet").read_bytes() == parquet


# --- retries, size, and what stays as it was ---------------------------------------------


def test_every_attempt_encrypts_afresh_under_the_same_names(
    partner: Partner, s3_endpoint: str, bucket: str, s3_client: Any
):
    feed = encrypted_feed(partner, X25519)
    s3_destination(feed=feed, endpoint=s3_endpoint, bucket=bucket)
    batch = stored_batch(feed=feed, records=RECORDS)

    first = batch_upload(batch=batch, attempt=attempt_for(batch))
    before = objects(s3_client, bucket)
    second = batch_upload(batch=batch, attempt=attempt_for(batch))
    after = objects(s3_client, bucket)

    assert first.outcome == second.outcome == Outcome.SUCCEEDED
    assert sorted(after) == sorted(before)
    data_key = f"{FOLDER}/{batch.pk}.jsonl.gz.jwe"
    assert after[data_key] != before[data_key]
    assert header_of(after[data_key])["epk"] != header_of(before[data_key])["epk"]
    manifest_key = f"{FOLDER}/{batch.pk}.manifest.json"
    assert json.loads(after[manifest_key])["sha256"] == hashlib.sha256(after[data_key]).hexdigest()
    assert decrypt_body(after[data_key], private_key(X25519)) == decrypt_body(
        before[data_key], private_key(X25519)
    )
    assert data_key in second.response_excerpt


def test_a_large_encrypted_file_is_spooled_to_disk_and_goes_up_in_parts(
    partner: Partner, s3_endpoint: str, bucket: str, s3_client: Any, monkeypatch
):
    # S3's smallest part is 5 MiB: a token of a few parts, without a huge test.
    part = 5 * 1024 * 1024
    monkeypatch.setattr(
        s3, "TRANSFER", TransferConfig(multipart_threshold=part, multipart_chunksize=part)
    )
    feed = encrypted_feed(partner, RSA)
    s3_destination(feed=feed, endpoint=s3_endpoint, bucket=bucket)
    records = [{"event_id": secrets.token_hex(128)} for _ in range(50_000)]
    batch = stored_batch(feed=feed, records=records)
    spools: list[Any] = []
    real_spool = services.tempfile.SpooledTemporaryFile

    def recorded_spool(*args: Any, **kwargs: Any) -> Any:
        spool = real_spool(*args, **kwargs)
        # moto's server runs in this process and spools the requests it receives.
        if kwargs.get("max_size") == services.SPOOL_MEMORY_BYTES:
            spools.append(spool)
        return spool

    monkeypatch.setattr(services.tempfile, "SpooledTemporaryFile", recorded_spool)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.SUCCEEDED, result.error
    [spool] = spools
    assert spool._rolled  # moved to a temporary file on disk, not kept in memory
    assert spool.closed  # and deleted once uploaded
    data_key = f"{FOLDER}/{batch.pk}.jsonl.gz.jwe"
    etag = s3_client.head_object(Bucket=bucket, Key=data_key)["ETag"].strip('"')
    assert int(etag.rsplit("-", 1)[1]) >= 2  # a multipart upload's ETag ends in "-<parts>"
    token = s3_client.get_object(Bucket=bucket, Key=data_key)["Body"].read()
    manifest_key = f"{FOLDER}/{batch.pk}.manifest.json"
    manifest = json.loads(s3_client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    assert manifest["sha256"] == hashlib.sha256(token).hexdigest()
    lines = gzip.decompress(decrypt_body(token, private_key(RSA))).splitlines()
    assert len(lines) == 50_000


def test_a_feed_without_encryption_keeps_its_clear_file_and_manifest(
    file_feed: Feed, s3_endpoint: str, bucket: str, s3_client: Any
):
    s3_destination(feed=file_feed, endpoint=s3_endpoint, bucket=bucket)
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.SUCCEEDED, result.error
    stored = objects(s3_client, bucket)
    assert f"{FOLDER}/{batch.pk}.jsonl.gz" in stored
    manifest = json.loads(stored[f"{FOLDER}/{batch.pk}.manifest.json"])
    assert set(manifest) == {
        "manifest_version",
        "batch_id",
        "partner",
        "feed",
        "sequence",
        "kind",
        "window_start",
        "window_end",
        "row_count",
        "file_name",
        "file_path",
        "format",
        "byte_size",
        "sha256",
        "created_at",
    }


def test_a_feed_without_a_key_id_says_so_with_a_null_kid(
    partner: Partner, s3_endpoint: str, bucket: str, s3_client: Any
):
    feed = encrypted_feed(partner, X25519, encryption_key_id="")
    s3_destination(feed=feed, endpoint=s3_endpoint, bucket=bucket)
    batch = stored_batch(feed=feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.SUCCEEDED, result.error
    stored = objects(s3_client, bucket)
    manifest = json.loads(stored[f"{FOLDER}/{batch.pk}.manifest.json"])
    assert manifest["encryption"] == {"alg": "ECDH-ES", "enc": "A256GCM", "kid": None}
    assert "kid" not in header_of(stored[f"{FOLDER}/{batch.pk}.jsonl.gz.jwe"])
