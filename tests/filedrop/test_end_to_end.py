"""A file feed's window, from stored exposures to files a partner can check and load."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.services import batch_build, batch_send
from gateway.delivery.storage import body_open
from gateway.filedrop.manifest import signature_file_parse
from gateway.simulator.signatures import signature_verify
from partners.models import Feed, FeedShape, Partner
from partners.services import signing_secret_current
from tests.delivery.builders import make_exposure
from tests.filedrop.conftest import (
    CLAIM_ALL,
    WINDOW_START,
    SshServer,
    make_file_feed,
    s3_destination,
    sftp_destination,
)
from tests.privacy.builders import RAW_USER_ID

pytestmark = pytest.mark.django_db

ALLOWLIST = ["event_id", "occurred_at", "campaign_id", "geo.country", "user_id"]


def built_and_sent(feed: Feed, *, exposures: int) -> tuple[Batch, list[str]]:
    """Exposures in the feed's 09:00 window, built and sent through the delivery services."""
    event_ids = [
        make_exposure(received_at=WINDOW_START + timedelta(minutes=n)).event_id
        for n in range(exposures)
    ]
    batch = Batch.objects.create(
        feed=feed,
        sequence=1,
        window_start=WINDOW_START,
        window_end=WINDOW_START + timedelta(hours=1),
        claim_to=CLAIM_ALL,
    )
    batch_build(batch_id=batch.pk)
    attempt = batch_send(batch_id=batch.pk)
    assert attempt is not None
    assert attempt.outcome == DeliveryAttempt.Outcome.SUCCEEDED, attempt.error
    batch.refresh_from_db()
    return batch, event_ids


def assert_signed_manifest_describes(
    *, partner: Partner, manifest_bytes: bytes, signature: bytes, data: bytes
) -> dict[str, Any]:
    manifest = json.loads(manifest_bytes)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["byte_size"] == len(data)
    signature_verify(
        secret=signing_secret_current(partner_id=partner.pk),
        body=manifest_bytes.decode(),
        headers=signature_file_parse(signature),
    )
    return manifest


def test_a_parquet_window_is_built_from_exposures_and_dropped_on_sftp(
    partner: Partner, sshd: SshServer, sftp_root: Path
):
    feed = make_file_feed(partner=partner, format=Feed.Format.PARQUET, field_allowlist=ALLOWLIST)
    sftp_destination(feed=feed, server=sshd, directory=sftp_root)

    batch, event_ids = built_and_sent(feed, exposures=3)

    assert batch.status == Batch.Status.DELIVERED
    folder = sftp_root / "incoming/gateway/hourly/2026/11/24/09"
    data = (folder / f"{batch.pk}.parquet").read_bytes()
    manifest = assert_signed_manifest_describes(
        partner=partner,
        manifest_bytes=(folder / f"{batch.pk}.manifest.json").read_bytes(),
        signature=(folder / f"{batch.pk}.manifest.json.sig").read_bytes(),
        data=data,
    )
    # For Parquet feeds the batch's own hash is the file's.
    assert batch.body_sha256 == manifest["sha256"]
    assert manifest["row_count"] == 3
    table = pq.read_table(folder / f"{batch.pk}.parquet")
    assert table.column_names == [
        "event_id",
        "occurred_at",
        "campaign_id",
        "geo.country",
        "user_id",
        "user_id_previous",
    ]
    rows = table.to_pylist()
    assert sorted(row["event_id"] for row in rows) == sorted(event_ids)
    # Minimised as for any other feed: the user id leaves only as a pseudonym.
    assert all(row["user_id"] and row["user_id"] != RAW_USER_ID for row in rows)


def test_an_ndjson_window_is_built_from_exposures_and_dropped_on_s3(
    partner: Partner, s3_endpoint: str, bucket: str, s3_client: Any
):
    feed = make_file_feed(partner=partner, field_allowlist=ALLOWLIST, file_path_prefix="")
    s3_destination(feed=feed, endpoint=s3_endpoint, bucket=bucket)

    batch, event_ids = built_and_sent(feed, exposures=2)

    key = f"hourly/2026/11/24/09/{batch.pk}"

    def read(suffix: str) -> bytes:
        return s3_client.get_object(Bucket=bucket, Key=key + suffix)["Body"].read()

    data = read(".jsonl.gz")
    assert_signed_manifest_describes(
        partner=partner,
        manifest_bytes=read(".manifest.json"),
        signature=read(".manifest.json.sig"),
        data=data,
    )
    # NDJSON batches keep the hash of the uncompressed lines, as pushes and pulls do.
    assert hashlib.sha256(gzip.decompress(data)).hexdigest() == batch.body_sha256
    records = [json.loads(line) for line in gzip.decompress(data).splitlines()]
    assert sorted(record["event_id"] for record in records) == sorted(event_ids)


def test_an_aggregate_parquet_feed_builds_one_row_per_cell(partner: Partner):
    feed = make_file_feed(
        partner=partner,
        format=Feed.Format.PARQUET,
        shape=FeedShape.AGGREGATE,
        field_allowlist=["campaign_id", "event_type"],
        aggregate_dimensions=["campaign_id", "event_type"],
        aggregate_min_users=1,
    )
    for n in range(3):
        make_exposure(received_at=WINDOW_START + timedelta(minutes=n), user_id=f"user-{n}")
    batch = Batch.objects.create(
        feed=feed,
        sequence=1,
        window_start=WINDOW_START,
        window_end=WINDOW_START + timedelta(hours=1),
        claim_to=CLAIM_ALL,
    )

    batch_build(batch_id=batch.pk)

    batch.refresh_from_db()
    with body_open(batch.body_path) as body:
        table = pq.read_table(body)
    assert table.to_pylist() == [
        {"campaign_id": "cmp-1", "event_type": "impression", "events": 3, "users": 3}
    ]
    assert batch.delivered_count == 1
