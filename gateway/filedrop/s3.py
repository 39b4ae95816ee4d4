"""Uploads to S3 or any S3-compatible object store, with boto3. No Django.

Files are streamed from the stored body with ``upload_fileobj``: multipart
above ``MULTIPART_BYTES``, never read into memory whole. An S3 PUT replaces an
object atomically, so a partner never reads half a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)

from gateway.delivery import retry
from gateway.errors import DeliveryError

MULTIPART_BYTES = 16 * 1024 * 1024
TRANSFER = TransferConfig(
    multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES, max_concurrency=4
)
# Error codes whose HTTP status alone would call them permanent (400) or whose
# status varies between stores, but that a later attempt can get past.
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "InternalError",
        "ServiceUnavailable",
    }
)
# Our own configuration is wrong: retrying changes nothing.
PERMANENT_LIBRARY_ERRORS = (NoCredentialsError, PartialCredentialsError, ParamValidationError)


@dataclass(frozen=True)
class S3Target:
    """A bucket and the credentials to write to it."""

    bucket: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    endpoint_url: str = ""
    region: str = ""


class S3Drop:
    """One boto3 client for one batch's uploads."""

    def __init__(self, target: S3Target, *, timeout: float) -> None:
        self._bucket = target.bucket
        self.location = f"s3://{target.bucket}" + (
            f" at {target.endpoint_url}" if target.endpoint_url else ""
        )
        try:
            # A session of our own: boto3's default session is not thread-safe.
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=target.endpoint_url or None,
                region_name=target.region or None,
                aws_access_key_id=target.access_key_id,
                aws_secret_access_key=target.secret_access_key,
                config=_client_config(custom_endpoint=bool(target.endpoint_url), timeout=timeout),
            )
        except (BotoCoreError, ValueError) as exc:
            detail = f"S3 destination misconfigured: {exc}"
            raise DeliveryError(detail, transient=False) from exc

    def put(self, *, path: str, file: IO[bytes], size: int, content_type: str) -> None:
        try:
            self._client.upload_fileobj(
                file,
                self._bucket,
                path,
                ExtraArgs={"ContentType": content_type},
                Config=TRANSFER,
            )
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise s3_error(exc, bucket=self._bucket, path=path) from exc

    def close(self) -> None:
        self._client.close()


def _client_config(*, custom_endpoint: bool, timeout: float) -> Config:
    options: dict[str, object] = {
        "connect_timeout": timeout,
        "read_timeout": timeout,
        # A few quick retries inside one attempt; the delivery retries do the rest.
        "retries": {"mode": "standard", "max_attempts": 3},
    }
    if custom_endpoint:
        # Most S3-compatible stores want path-style URLs and predate the
        # checksums boto3 now sends by default.
        options["s3"] = {"addressing_style": "path"}
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    return Config(**options)


def s3_error(exc: Exception, *, bucket: str, path: str) -> DeliveryError:
    """The DeliveryError for a failed upload: transient when a later attempt may succeed."""
    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__cause__, ClientError):
        exc = exc.__cause__
    where = f"s3://{bucket}/{path}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        transient = code in TRANSIENT_CODES or retry.is_transient_status(status)
        message = error.get("Message") or "no message"
        detail = f"S3 {code} (HTTP {status}) for {where}: {message}"
        return DeliveryError(detail, transient=transient)
    transient = not isinstance(exc, PERMANENT_LIBRARY_ERRORS)
    return DeliveryError(f"S3 upload of {where} failed: {exc}", transient=transient)
