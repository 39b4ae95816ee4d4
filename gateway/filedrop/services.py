"""File drops: upload a batch as a file with its manifest and signature; watch the deadlines.

``batch_upload`` is one delivery attempt of a file-drop batch, called by the
send path (``gateway.delivery.sending.batch_send``), which claims the batch,
writes the attempt row and schedules retries exactly as for HTTP pushes.
Files go up in a fixed order, data file, then manifest, then signature: the
partner takes the manifest as the commit marker, so it never points at a file
that is not there yet. Paths depend only on the batch, so a retry overwrites
what an earlier, half-finished attempt left.

A feed with payload encryption gets the JWE of the stored body instead
(``<name>.jwe``), encrypted afresh at every attempt into a spooled temporary
file, so a large body is never held in memory; its manifest describes the
encrypted file. Without a usable key nothing is uploaded.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from gateway.delivery.encryption import JOSE_CONTENT_TYPE, EncryptionError, encrypt_stream
from gateway.delivery.models import Batch, DeliveryAttempt, FeedNotice
from gateway.delivery.retention import attempt_body_error
from gateway.delivery.sending import AttemptResult
from gateway.delivery.signers import attempt_signer
from gateway.delivery.storage import body_open
from gateway.errors import DeliveryError
from gateway.filedrop.layout import CONTENT_TYPES, FileLayout, file_layout
from gateway.filedrop.manifest import Manifest, signature_file
from gateway.filedrop.models import DeadlineMiss, FileDestination
from gateway.filedrop.transport import FileDrop
from partners.endpoints import EndpointRefused, EndpointUnresolvable, resolve_and_check
from partners.models import Feed, Partner
from partners.secrets import SecretDecryptionError, decrypt, encrypt

if TYPE_CHECKING:
    from gateway.filedrop.s3 import S3Target
    from gateway.filedrop.sftp import SftpTarget

logger = logging.getLogger(__name__)

DEADLINE_MISSED = "file_deadline_missed"
# Batches checked per deadline run, oldest first; the next run takes the rest.
DEADLINE_CHECK_LIMIT = 500
# The first bytes of a stored body tell its format, whatever the feed says today.
BODY_MAGIC = {b"\x1f\x8b": "ndjson", b"PAR1": "parquet"}
READ_CHUNK = 1024 * 1024
# An encrypted file stays in memory up to this size, then moves to a temporary file.
SPOOL_MEMORY_BYTES = 4 * 1024 * 1024
JSON, TEXT = "application/json", "text/plain"


def batch_upload(*, batch: Batch, attempt: DeliveryAttempt) -> AttemptResult:
    """Upload a ready file-drop batch once; the outcome says whether to retry.

    Signed and dated with the attempt's timestamp, like a push.
    """
    started = time.monotonic()
    try:
        summary = _batch_files_upload(batch=batch, timestamp=attempt.webhook_timestamp)
    except DeliveryError as exc:
        logger.warning("batch %s upload attempt %d failed: %s", batch.pk, attempt.number, exc)
        outcome = (
            DeliveryAttempt.Outcome.TRANSIENT_FAILURE
            if exc.transient
            else DeliveryAttempt.Outcome.PERMANENT_FAILURE
        )
        return AttemptResult(outcome=outcome, error=exc.detail, duration_ms=_since(started))
    return AttemptResult(
        outcome=DeliveryAttempt.Outcome.SUCCEEDED,
        response_excerpt=summary,
        duration_ms=_since(started),
    )


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _batch_files_upload(*, batch: Batch, timestamp: int) -> str:
    """Data file, manifest, signature; returns a line for the attempt row."""
    destination = _destination_for(batch)
    encrypted = batch.feed.encryption != Feed.Encryption.NONE
    with _stored_body(batch.body_path) as body:
        file_format = _body_format(body)
        try:
            layout = batch_layout(batch=batch, file_format=file_format, encrypted=encrypted)
        except ValueError as exc:
            raise DeliveryError(f"no file path for the batch: {exc}", transient=False) from exc
        with _data_file(feed=batch.feed, body=body, file_format=file_format) as data:
            manifest = batch_manifest(
                batch=batch,
                layout=layout,
                file_format=file_format,
                byte_size=data.size,
                sha256=data.sha256,
                created_at=datetime.fromtimestamp(timestamp, tz=UTC),
                encryption=data.encryption,
            ).to_bytes()
            # Signed before anything goes out: without a key, nothing is uploaded.
            signature = _manifest_signature(batch=batch, timestamp=timestamp, manifest=manifest)
            location = _files_put(
                destination=destination,
                layout=layout,
                data=data,
                manifest=manifest,
                signature=signature,
            )
    return f"uploaded {layout.data} ({data.size} bytes, sha256 {data.sha256}) to {location}"


def _files_put(
    *,
    destination: FileDestination,
    layout: FileLayout,
    data: DataFile,
    manifest: bytes,
    signature: bytes,
) -> str:
    """Upload the three files in commit order; returns where they went."""
    drop = _drop_open(destination)
    try:
        drop.put(path=layout.data, file=data.file, size=data.size, content_type=data.content_type)
        _put_bytes(drop, path=layout.manifest, content=manifest, content_type=JSON)
        _put_bytes(drop, path=layout.signature, content=signature, content_type=TEXT)
    finally:
        drop.close()
    return drop.location


def _destination_for(batch: Batch) -> FileDestination:
    """The feed's destination, once it is sure that the batch may go there at all."""
    destination = FileDestination.objects.filter(feed_id=batch.feed_id).first()
    if destination is None:
        raise DeliveryError("the feed has no file destination", transient=False)
    body_error = attempt_body_error(batch)
    if body_error is not None:
        raise body_error
    return destination


@dataclass(frozen=True)
class DataFile:
    """The data file exactly as it is uploaded: the stored body, or its JWE."""

    file: IO[bytes]
    size: int
    sha256: str
    content_type: str
    # For the manifest: how the file is encrypted; None when it is not.
    encryption: dict[str, str | None] | None = None


@contextmanager
def _data_file(*, feed: Feed, body: IO[bytes], file_format: str) -> Iterator[DataFile]:
    """The file to upload, positioned at its start; an encrypted one is deleted afterwards."""
    if feed.encryption == Feed.Encryption.NONE:
        sha256, size = _digest(body)
        yield DataFile(file=body, size=size, sha256=sha256, content_type=CONTENT_TYPES[file_format])
        return
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        encryption = _body_encrypt(feed=feed, body=body, file_format=file_format, target=spool)
        spool.seek(0)
        sha256, size = _digest(spool)
        yield DataFile(
            file=spool,
            size=size,
            sha256=sha256,
            content_type=JOSE_CONTENT_TYPE,
            encryption=encryption,
        )


def _body_encrypt(
    *, feed: Feed, body: IO[bytes], file_format: str, target: IO[bytes]
) -> dict[str, str | None]:
    """Write the JWE of ``body`` to ``target`` under a fresh content key; returns its summary.

    Fails closed: a key that cannot encrypt is a permanent failure, never a file in clear.
    """
    try:
        token = encrypt_stream(
            body,
            target,
            scheme=feed.encryption,
            public_key_pem=feed.encryption_public_key,
            key_id=feed.encryption_key_id,
            # What the partner has after decrypting: the file a clear feed gets.
            content_type=CONTENT_TYPES[file_format],
        )
    except EncryptionError as exc:
        raise DeliveryError(f"cannot encrypt the file: {exc}", transient=False) from exc
    except OSError as exc:
        # Reading the stored body or writing the temporary file (a full disk clears up).
        raise DeliveryError(f"cannot encrypt the file: {exc}", transient=True) from exc
    header = token.header
    return {"alg": header["alg"], "enc": header["enc"], "kid": header.get("kid")}


def batch_layout(*, batch: Batch, file_format: str, encrypted: bool = False) -> FileLayout:
    """Where the batch's files go; a late batch goes to the hour it was created in."""
    hour = batch.created_at if batch.kind == Batch.Kind.LATE else batch.window_start
    return file_layout(
        prefix=batch.feed.file_path_prefix,
        feed_name=batch.feed.name,
        batch_id=str(batch.pk),
        file_format=file_format,
        hour=hour,
        encrypted=encrypted,
    )


def batch_manifest(
    *,
    batch: Batch,
    layout: FileLayout,
    file_format: str,
    byte_size: int,
    sha256: str,
    created_at: datetime,
    encryption: dict[str, str | None] | None = None,
) -> Manifest:
    return Manifest(
        batch_id=str(batch.pk),
        partner=batch.feed.partner.slug,
        feed=batch.feed.name,
        sequence=batch.sequence,
        kind=batch.kind,
        window_start=batch.window_start,
        window_end=batch.window_end,
        row_count=batch.delivered_count,
        file_name=layout.data_name,
        file_path=layout.data,
        format=file_format,
        byte_size=byte_size,
        sha256=sha256,
        created_at=created_at,
        encryption=encryption,
        parts=_manifest_parts(batch),
    )


def _manifest_parts(batch: Batch) -> dict[str, Any] | None:
    """Which part of its claim the file is, for a claim delivered in parts; else None."""
    first_part = batch.claim_first_part_id
    if first_part is None:
        return None
    return {"part": batch.part, "part_count": batch.part_count, "first_part": str(first_part)}


@contextmanager
def _stored_body(name: str) -> Iterator[IO[bytes]]:
    try:
        body = body_open(name)
    except FileNotFoundError as exc:
        raise DeliveryError(f"the stored body {name} is missing", transient=False) from exc
    except OSError as exc:
        detail = f"the stored body {name} cannot be read: {exc}"
        raise DeliveryError(detail, transient=True) from exc
    with body:
        yield body


def _body_format(body: IO[bytes]) -> str:
    head = body.read(4)
    body.seek(0)
    for magic, file_format in BODY_MAGIC.items():
        if head.startswith(magic):
            return file_format
    raise DeliveryError("the stored body is neither gzip NDJSON nor Parquet", transient=False)


def _digest(body: IO[bytes]) -> tuple[str, int]:
    """SHA-256 and size of the file as it will be uploaded, read in chunks."""
    sha256, size = hashlib.sha256(), 0
    while chunk := body.read(READ_CHUNK):
        sha256.update(chunk)
        size += len(chunk)
    body.seek(0)
    return sha256.hexdigest(), size


def _manifest_signature(*, batch: Batch, timestamp: int, manifest: bytes) -> bytes:
    signer = attempt_signer(partner=batch.feed.partner, timestamp=timestamp)
    return signature_file(
        signer=signer, batch_id=str(batch.pk), timestamp=timestamp, manifest=manifest
    )


def _put_bytes(drop: FileDrop, *, path: str, content: bytes, content_type: str) -> None:
    drop.put(path=path, file=io.BytesIO(content), size=len(content), content_type=content_type)


# --- Destinations ------------------------------------------------------------------


def _drop_open(destination: FileDestination) -> FileDrop:
    """Connect to the destination, after checking where it points, with decrypted credentials."""
    timeout = settings.DELIVERY_TIMEOUT_SECONDS
    try:
        # Imported here: each library is only needed by destinations of its kind.
        if destination.kind == FileDestination.Kind.S3:
            from gateway.filedrop.s3 import S3Drop

            return S3Drop(_s3_target(destination), timeout=timeout)
        from gateway.filedrop.sftp import SftpDrop

        return SftpDrop(_sftp_target(destination), timeout=timeout)
    except SecretDecryptionError as exc:
        raise DeliveryError(
            "the destination's credentials cannot be decrypted with FIELD_ENCRYPTION_KEYS",
            transient=False,
        ) from exc


def _s3_target(destination: FileDestination) -> S3Target:
    from gateway.filedrop.s3 import S3Target

    if destination.endpoint_url:
        # Checked at every attempt, like push endpoints: DNS may have changed since.
        _checked_address(destination.endpoint_url)
    return S3Target(
        bucket=destination.bucket,
        access_key_id=destination.access_key_id,
        secret_access_key=_decrypted(destination.secret_access_key_encrypted),
        endpoint_url=destination.endpoint_url,
        region=destination.region,
    )


def _sftp_target(destination: FileDestination) -> SftpTarget:
    from gateway.filedrop.sftp import SftpTarget

    host = destination.host.strip()
    literal = f"[{host}]" if ":" in host else host
    return SftpTarget(
        host=host,
        # The connection goes to exactly the address checked here.
        address=_checked_address(f"https://{literal}:{destination.port}/"),
        port=destination.port,
        username=destination.username,
        host_key=destination.host_key,
        directory=destination.remote_directory.strip(),
        private_key=_decrypted(destination.private_key_encrypted),
        password=_decrypted(destination.password_encrypted),
    )


def _checked_address(url: str) -> str:
    """The address to connect to for ``url``'s host, under the push endpoints' rules."""
    try:
        return resolve_and_check(url).address
    except EndpointRefused as exc:
        raise DeliveryError(f"destination refused: {exc}", transient=False) from exc
    except EndpointUnresolvable as exc:
        raise DeliveryError(f"destination unreachable: {exc}", transient=True) from exc


def _decrypted(ciphertext: str) -> str:
    return decrypt(ciphertext) if ciphertext else ""


def file_destination_save(
    *,
    destination: FileDestination,
    secret_access_key: str = "",
    private_key: str = "",
    password: str = "",
) -> FileDestination:
    """Save a destination, encrypting the secrets given; an empty one keeps what is stored.

    An SFTP destination logs in one way: a new private key removes a stored
    password, and a new password removes a stored key.
    """
    if secret_access_key:
        destination.secret_access_key_encrypted = encrypt(secret_access_key)
    if private_key:
        destination.private_key_encrypted = encrypt(private_key.strip() + "\n")
        destination.password_encrypted = ""
    if password:
        destination.password_encrypted = encrypt(password)
        destination.private_key_encrypted = ""
    destination.save()
    return destination


# --- Deadlines ----------------------------------------------------------------------


def file_deadlines_check(*, now: datetime) -> int:
    """Notify once per window batch whose file missed its feed's deadline; returns how many.

    A window's file is due ``file_deadline_minutes`` after the window ends.
    Checked for window batches of live file-drop feeds that ended within
    ``FILEDROP_DEADLINE_LOOKBACK_HOURS``: late batches have no deadline, empty
    windows have no file, and a superseded batch's successor is checked instead.
    """
    lookback = now - timedelta(hours=settings.FILEDROP_DEADLINE_LOOKBACK_HOURS)
    feeds = Feed.objects.filter(
        mode=Feed.Mode.FILE, enabled=True, partner__status=Partner.Status.ACTIVE
    ).select_related("partner")
    # Per feed, so the deadline is a constant in the query: multiplying a
    # column by an interval is not portable (SQLite has no intervals).
    recorded = 0
    for feed in feeds:
        deadline = timedelta(minutes=feed.file_deadline_minutes)
        missed = (
            Batch.objects.filter(
                feed=feed,
                kind=Batch.Kind.WINDOW,
                window_end__gte=lookback,
                window_end__lt=now - deadline,
                file_deadline_miss__isnull=True,
            )
            .exclude(status__in=[Batch.Status.EMPTY, Batch.Status.SUPERSEDED])
            .filter(Q(delivered_at__isnull=True) | Q(delivered_at__gt=F("window_end") + deadline))
            .order_by("window_end")[:DEADLINE_CHECK_LIMIT]
        )
        for batch in missed:
            batch.feed = feed
            recorded += _deadline_miss_record(batch=batch, due=batch.window_end + deadline)
    return recorded


def _deadline_miss_record(*, batch: Batch, due: datetime) -> int:
    """The miss and its notice, once per batch even when two checks race; 1 if new."""
    feed = batch.feed
    if batch.delivered_at is not None:
        late = f"it was uploaded at {batch.delivered_at:%Y-%m-%d %H:%M:%S} UTC"
    else:
        late = f"it is {batch.get_status_display().lower()}"
    message = (
        f"The file of batch #{batch.sequence} (window {batch.window_start:%Y-%m-%d %H:%M} to "
        f"{batch.window_end:%H:%M} UTC) was due {due:%Y-%m-%d %H:%M} UTC, "
        f"{feed.file_deadline_minutes} minutes after its window; {late}."
    )
    with transaction.atomic():
        _, created = DeadlineMiss.objects.get_or_create(batch=batch, defaults={"deadline": due})
        if not created:
            return 0
        FeedNotice.objects.create(
            feed=feed, level=FeedNotice.Level.WARNING, code=DEADLINE_MISSED, message=message
        )
    logger.warning("feed %s: %s", feed, message)
    return 1
