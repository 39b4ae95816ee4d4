"""Uploads to a real S3-compatible server (moto's, on loopback): paths, manifest, failures."""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from moto.core.authorization import enable_iam_authentication

from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.filedrop import s3
from gateway.filedrop.manifest import signature_file_parse
from gateway.filedrop.services import batch_upload
from gateway.simulator.signatures import signature_verify
from partners.models import Feed
from partners.services import signing_secret_current
from tests.filedrop.conftest import attempt_for, free_port, s3_destination, stored_batch

pytestmark = pytest.mark.django_db

Outcome = DeliveryAttempt.Outcome
RECORDS = [{"event_id": f"evt-{n}", "campaign_id": "cmp-1"} for n in range(3)]


def objects(client: Any, bucket: str) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listing
    }


def expected_keys(batch: Batch) -> list[str]:
    folder = f"incoming/gateway/hourly/2026/11/24/09/{batch.pk}"
    return [f"{folder}.jsonl.gz", f"{folder}.manifest.json", f"{folder}.manifest.json.sig"]


def test_a_batch_lands_as_data_file_manifest_and_signature_under_its_hour(
    file_feed: Feed, s3_endpoint: str, bucket: str, s3_client: Any
):
    s3_destination(feed=file_feed, endpoint=s3_endpoint, bucket=bucket)
    batch = stored_batch(feed=file_feed, records=RECORDS, sequence=4)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.SUCCEEDED, result.error
    stored = objects(s3_client, bucket)
    data_key, manifest_key, signature_key = expected_keys(batch)
    assert sorted(stored) == sorted(expected_keys(batch))
    data = stored[data_key]
    assert gzip.decompress(data).decode().splitlines() == [
        json.dumps(record, separators=(",", ":"), sort_keys=True) for record in RECORDS
    ]
    manifest = json.loads(stored[manifest_key])
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["byte_size"] == len(data)
    assert manifest["file_path"] == data_key
    assert (manifest["batch_id"], manifest["sequence"], manifest["row_count"]) == (
        str(batch.pk),
        4,
        3,
    )
    assert (manifest["format"], manifest["kind"], manifest["window_start"]) == (
        "ndjson",
        "window",
        "2026-11-24T09:00:00Z",
    )
    headers = signature_file_parse(stored[signature_key])
    signature_verify(
        secret=signing_secret_current(partner_id=file_feed.partner_id),
        body=stored[manifest_key].decode(),
        headers=headers,
    )
    head = s3_client.head_object(Bucket=bucket, Key=data_key)
    assert head["ContentType"] == "application/gzip"
    assert data_key in result.response_excerpt


def test_uploading_a_batch_again_overwrites_the_same_three_objects(
    file_feed: Feed, s3_endpoint: str, bucket: str, s3_client: Any
):
    s3_destination(feed=file_feed, endpoint=s3_endpoint, bucket=bucket)
    batch = stored_batch(feed=file_feed, records=RECORDS)

    first = batch_upload(batch=batch, attempt=attempt_for(batch))
    before = objects(s3_client, bucket)
    second = batch_upload(batch=batch, attempt=attempt_for(batch))
    after = objects(s3_client, bucket)

    assert first.outcome == second.outcome == Outcome.SUCCEEDED
    assert sorted(after) == sorted(before) == sorted(expected_keys(batch))
    data_key, manifest_key, _ = expected_keys(batch)
    assert after[data_key] == before[data_key]
    assert json.loads(after[manifest_key])["sha256"] == json.loads(before[manifest_key])["sha256"]


def test_a_large_body_goes_up_in_parts_streamed_from_the_stored_file(
    file_feed: Feed, s3_endpoint: str, bucket: str, s3_client: Any, monkeypatch
):
    # S3's smallest part is 5 MiB: a body of a few parts, without a huge test.
    part = 5 * 1024 * 1024
    monkeypatch.setattr(
        s3, "TRANSFER", TransferConfig(multipart_threshold=part, multipart_chunksize=part)
    )
    s3_destination(feed=file_feed, endpoint=s3_endpoint, bucket=bucket)
    records = [{"event_id": secrets.token_hex(128)} for _ in range(50_000)]
    batch = stored_batch(feed=file_feed, records=records)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.SUCCEEDED, result.error
    data_key, manifest_key, _ = expected_keys(batch)
    etag = s3_client.head_object(Bucket=bucket, Key=data_key)["ETag"].strip('"')
    _, parts = etag.rsplit("-", 1)  # a multipart upload's ETag ends in "-<parts>"
    assert int(parts) >= 2
    data = s3_client.get_object(Bucket=bucket, Key=data_key)["Body"].read()
    manifest = json.loads(s3_client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_missing_bucket_fails_permanently_with_a_clear_error(
    file_feed: Feed, s3_endpoint: str, s3_client: Any
):
    s3_destination(feed=file_feed, endpoint=s3_endpoint, bucket="no-such-bucket-here")
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert "NoSuchBucket" in result.error
    assert "no-such-bucket-here" in result.error


def test_wrong_credentials_fail_permanently(file_feed: Feed, s3_endpoint: str, bucket: str):
    s3_destination(
        feed=file_feed,
        endpoint=s3_endpoint,
        bucket=bucket,
        access_key_id="AKIAUNKNOWNKEY000000",
        secret_access_key="wrong",
    )
    batch = stored_batch(feed=file_feed, records=RECORDS)

    with enable_iam_authentication():
        result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert "InvalidAccessKeyId" in result.error or "AccessDenied" in result.error
    assert "wrong" not in result.error


def test_an_unreachable_server_is_a_transient_failure(file_feed: Feed, bucket: str, settings):
    settings.DELIVERY_TIMEOUT_SECONDS = 2
    s3_destination(feed=file_feed, endpoint=f"http://127.0.0.1:{free_port()}", bucket=bucket)
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.TRANSIENT_FAILURE
    assert "S3 upload of s3://" in result.error
    assert result.duration_ms is not None
