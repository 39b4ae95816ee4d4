"""Uploads to a real OpenSSH server on loopback: paths, manifest, the pinned host key, failures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.filedrop.manifest import signature_file_parse
from gateway.filedrop.services import batch_upload
from gateway.simulator.signatures import signature_verify
from partners.models import Feed, Partner
from partners.services import signing_secret_current
from tests.filedrop.conftest import (
    SshServer,
    attempt_for,
    free_port,
    make_file_feed,
    sftp_destination,
    ssh_key,
    stored_batch,
)

pytestmark = pytest.mark.django_db

Outcome = DeliveryAttempt.Outcome
RECORDS = [{"event_id": f"evt-{n}", "campaign_id": "cmp-1"} for n in range(3)]


def hour_folder(root: Path) -> Path:
    return root / "incoming/gateway/hourly/2026/11/24/09"


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_a_parquet_batch_lands_with_manifest_and_signature(
    partner: Partner, sshd: SshServer, sftp_root: Path
):
    feed = make_file_feed(
        partner=partner, format=Feed.Format.PARQUET, field_allowlist=["event_id", "campaign_id"]
    )
    sftp_destination(feed=feed, server=sshd, directory=sftp_root)
    batch = stored_batch(feed=feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.SUCCEEDED, result.error
    folder = hour_folder(sftp_root)
    assert files_under(folder) == sorted(
        [f"{batch.pk}.parquet", f"{batch.pk}.manifest.json", f"{batch.pk}.manifest.json.sig"]
    )
    data = (folder / f"{batch.pk}.parquet").read_bytes()
    manifest_bytes = (folder / f"{batch.pk}.manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == batch.body_sha256
    assert manifest["byte_size"] == len(data)
    assert manifest["format"] == "parquet"
    assert pq.read_table(folder / f"{batch.pk}.parquet").to_pylist() == RECORDS
    signature_verify(
        secret=signing_secret_current(partner_id=partner.pk),
        body=manifest_bytes.decode(),
        headers=signature_file_parse((folder / f"{batch.pk}.manifest.json.sig").read_bytes()),
    )


def test_uploading_again_replaces_the_files_and_leaves_no_temporary_ones(
    file_feed: Feed, sshd: SshServer, sftp_root: Path
):
    sftp_destination(feed=file_feed, server=sshd, directory=sftp_root)
    batch = stored_batch(feed=file_feed, records=RECORDS)

    first = batch_upload(batch=batch, attempt=attempt_for(batch))
    data = (hour_folder(sftp_root) / f"{batch.pk}.jsonl.gz").read_bytes()
    second = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert first.outcome == second.outcome == Outcome.SUCCEEDED
    assert files_under(sftp_root) == sorted(
        f"incoming/gateway/hourly/2026/11/24/09/{batch.pk}{suffix}"
        for suffix in (".jsonl.gz", ".manifest.json", ".manifest.json.sig")
    )
    assert (hour_folder(sftp_root) / f"{batch.pk}.jsonl.gz").read_bytes() == data


def test_a_late_batch_goes_to_the_hour_it_was_created_in(
    file_feed: Feed, sshd: SshServer, sftp_root: Path
):
    sftp_destination(feed=file_feed, server=sshd, directory=sftp_root)
    batch = stored_batch(feed=file_feed, records=RECORDS, kind=Batch.Kind.LATE)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.SUCCEEDED, result.error
    hour = batch.created_at.strftime("%Y/%m/%d/%H")
    folder = sftp_root / "incoming/gateway/hourly" / hour
    assert (folder / f"{batch.pk}.jsonl.gz").is_file()
    assert json.loads((folder / f"{batch.pk}.manifest.json").read_text())["kind"] == "late"


def test_a_server_with_another_host_key_is_refused_before_anything_is_sent(
    file_feed: Feed, sshd: SshServer, sftp_root: Path
):
    impostor = f"[127.0.0.1]:{sshd.port} {ssh_key().public}"
    sftp_destination(feed=file_feed, server=sshd, directory=sftp_root, host_key=impostor)
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert "host key mismatch" in result.error
    assert "SHA256:" in result.error
    assert files_under(sftp_root) == []


def test_a_destination_without_a_host_key_never_connects(
    file_feed: Feed, sshd: SshServer, sftp_root: Path
):
    sftp_destination(feed=file_feed, server=sshd, directory=sftp_root, host_key="")
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert "known_hosts" in result.error


def test_a_key_the_server_does_not_know_is_a_permanent_login_failure(
    file_feed: Feed, sshd: SshServer, sftp_root: Path
):
    sftp_destination(
        feed=file_feed, server=sshd, directory=sftp_root, private_key=ssh_key().private
    )
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert "login refused" in result.error


def test_a_server_that_refuses_writes_is_a_permanent_failure(
    file_feed: Feed, read_only_sshd: SshServer
):
    sftp_destination(feed=file_feed, server=read_only_sshd, directory=read_only_sshd.root)
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert "Permission denied" in result.error
    assert files_under(read_only_sshd.root) == []


def test_a_server_that_is_down_is_a_transient_failure(
    file_feed: Feed, sshd: SshServer, sftp_root: Path
):
    destination = sftp_destination(feed=file_feed, server=sshd, directory=sftp_root)
    destination.port = free_port()
    destination.save(update_fields=["port"])
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.TRANSIENT_FAILURE
    assert "Connection refused" in result.error
