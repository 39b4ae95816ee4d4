"""Failure classification: transient failures retry, permanent ones stop, nothing is lost."""

from __future__ import annotations

from typing import Any

import paramiko
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.services import batch_retry, batch_send
from gateway.filedrop import services
from gateway.filedrop.models import FileDestination
from gateway.filedrop.s3 import s3_error
from gateway.filedrop.services import batch_upload
from gateway.filedrop.sftp import sftp_error
from partners.models import Feed, Partner
from tests.filedrop.conftest import (
    attempt_for,
    free_port,
    make_file_feed,
    s3_destination,
    stored_batch,
)

Outcome = DeliveryAttempt.Outcome
RECORDS = [{"event_id": "evt-1"}]


def client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (client_error("NoSuchBucket", 404), False),
        (client_error("AccessDenied", 403), False),
        (client_error("InvalidAccessKeyId", 403), False),
        (client_error("SignatureDoesNotMatch", 403), False),
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("RequestTimeout", 400), True),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True),
        (NoCredentialsError(), False),
    ],
    ids=lambda value: (
        getattr(value, "response", {}).get("Error", {}).get("Code") or type(value).__name__
    ),
)
def test_s3_errors_are_transient_only_when_a_later_attempt_can_succeed(exc, transient):
    error = s3_error(exc, bucket="b", path="k")

    assert error.transient is transient
    assert "s3://b/k" in error.detail


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (paramiko.AuthenticationException("Authentication failed."), False),
        (PermissionError(13, "Permission denied"), False),
        (FileNotFoundError(2, "No such file"), False),
        # A full disk: OpenSSH answers SSH_FX_FAILURE, paramiko raises a plain OSError.
        (OSError("Failure"), True),
        (OSError("size mismatch in put!  10 != 20"), True),
        (EOFError(), True),
        (TimeoutError("timed out"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (paramiko.SSHException("Error reading SSH protocol banner"), True),
    ],
    ids=lambda value: type(value).__name__ + ":" + str(value)[:20],
)
def test_sftp_errors_are_permanent_for_logins_and_permissions_only(exc, transient):
    error = sftp_error(exc, where="sftp://u@h:22/")

    assert error.transient is transient
    assert "sftp://u@h:22/" in error.detail


@pytest.mark.django_db
def test_a_feed_without_a_destination_fails_permanently(file_feed: Feed):
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert (result.outcome, result.error) == (
        Outcome.PERMANENT_FAILURE,
        "the feed has no file destination",
    )


@pytest.mark.django_db
def test_a_batch_whose_body_expired_is_not_uploaded(file_feed: Feed):
    # No server behind the destination: an expired batch must fail before any connection.
    s3_destination(feed=file_feed, endpoint="http://127.0.0.1:9", bucket="drops")
    batch = stored_batch(feed=file_feed, records=RECORDS)
    batch.body_expired_at = batch.built_at or batch.created_at

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert "retention policy" in result.error


def x25519_public_pem() -> str:
    public = x25519.X25519PrivateKey.generate().public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("scheme", "pem", "problem"),
    [
        (Feed.Encryption.X25519, "", "needs the partner's public key"),
        (
            Feed.Encryption.X25519,
            "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n",
            "Not a PEM public key",
        ),
        (Feed.Encryption.RSA_OAEP_256, x25519_public_pem(), "needs an RSA public key"),
    ],
    ids=["missing", "not-a-key", "wrong-type"],
)
def test_a_feed_whose_key_cannot_encrypt_gets_no_files_at_all(
    partner: Partner, s3_endpoint: str, bucket: str, s3_client: Any, scheme, pem, problem
):
    # Saved around Feed.clean(), as a key that went bad since it was checked would be.
    feed = make_file_feed(partner=partner, encryption=scheme, encryption_public_key=pem)
    s3_destination(feed=feed, endpoint=s3_endpoint, bucket=bucket)
    batch = stored_batch(feed=feed, records=RECORDS)

    attempt = batch_send(batch_id=batch.pk)

    batch.refresh_from_db()
    assert attempt is not None and attempt.outcome == Outcome.PERMANENT_FAILURE
    assert attempt.error.startswith("cannot encrypt the file: ")
    assert problem in attempt.error
    assert batch.status == Batch.Status.FAILED
    # Fail closed: not even the clear data file, let alone a manifest.
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


@pytest.mark.django_db
def test_a_disk_error_while_encrypting_is_transient_and_uploads_nothing(
    partner: Partner, s3_endpoint: str, bucket: str, s3_client: Any, monkeypatch
):
    feed = make_file_feed(
        partner=partner,
        encryption=Feed.Encryption.X25519,
        encryption_public_key=x25519_public_pem(),
    )
    s3_destination(feed=feed, endpoint=s3_endpoint, bucket=bucket)
    batch = stored_batch(feed=feed, records=RECORDS)

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(services, "encrypt_stream", disk_full)
    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.TRANSIENT_FAILURE
    assert "No space left on device" in result.error
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


@pytest.mark.django_db
def test_nothing_is_uploaded_when_the_partner_has_no_signing_key(
    file_feed: Feed, s3_endpoint: str, bucket: str, s3_client: Any
):
    s3_destination(feed=file_feed, endpoint=s3_endpoint, bucket=bucket)
    file_feed.partner.signing_secrets.all().delete()
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert "signing" in result.error
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


@pytest.mark.django_db
def test_credentials_encrypted_under_a_retired_key_fail_permanently(
    file_feed: Feed, s3_endpoint: str, bucket: str
):
    destination = s3_destination(feed=file_feed, endpoint=s3_endpoint, bucket=bucket)
    FileDestination.objects.filter(pk=destination.pk).update(
        secret_access_key_encrypted="gAAAAAB-not-a-token"
    )
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert "cannot be decrypted" in result.error


@pytest.mark.django_db
def test_an_endpoint_on_a_private_address_is_refused_in_production(
    file_feed: Feed, s3_endpoint: str, bucket: str, settings
):
    s3_destination(feed=file_feed, endpoint=s3_endpoint, bucket=bucket)
    settings.ALLOW_PRIVATE_ENDPOINTS = False
    batch = stored_batch(feed=file_feed, records=RECORDS)

    result = batch_upload(batch=batch, attempt=attempt_for(batch))

    assert result.outcome == Outcome.PERMANENT_FAILURE
    assert result.error.startswith("destination refused")


@pytest.mark.django_db
def test_a_failed_upload_keeps_the_batch_so_it_can_be_sent_again_once_fixed(
    file_feed: Feed, s3_endpoint: str, s3_client: Any
):
    bucket = "created-later-by-the-partner"
    s3_destination(feed=file_feed, endpoint=s3_endpoint, bucket=bucket)
    batch = stored_batch(feed=file_feed, records=RECORDS)

    batch_send(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.FAILED
    assert "NoSuchBucket" in batch.last_error
    assert batch.body_path

    s3_client.create_bucket(Bucket=bucket)
    assert batch_retry(batch_id=batch.pk)
    batch_send(batch_id=batch.pk)

    batch.refresh_from_db()
    assert batch.status == Batch.Status.DELIVERED
    outcomes = list(batch.attempts.order_by("number").values_list("outcome", flat=True))
    assert outcomes == [Outcome.PERMANENT_FAILURE, Outcome.SUCCEEDED]


@pytest.mark.django_db
def test_a_transient_failure_schedules_a_retry(file_feed: Feed, bucket: str, settings):
    settings.DELIVERY_TIMEOUT_SECONDS = 2
    s3_destination(feed=file_feed, endpoint=f"http://127.0.0.1:{free_port()}", bucket=bucket)
    batch = stored_batch(feed=file_feed, records=RECORDS)

    attempt = batch_send(batch_id=batch.pk)

    batch.refresh_from_db()
    assert attempt is not None and attempt.outcome == Outcome.TRANSIENT_FAILURE
    assert batch.status == Batch.Status.RETRY_SCHEDULED
    assert batch.next_attempt_at is not None
