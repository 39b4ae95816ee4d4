"""Write operations of the partner API: downloading a batch, storing reported counts."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from django.db import transaction

from gateway.delivery.models import Batch
from gateway.delivery.signers import NoSigningKey, partner_signer, stream_signed_headers
from gateway.delivery.wire import DAMAGED_BODY_ERRORS, Hasher, WireBody, wire_body
from gateway.errors import DeliveryError, GatewayError, Gone, ValidationFailed
from gateway.partner_api.report_rows import ReportRow, report_rows_parse, row_error
from gateway.partner_api.selectors import batch_for_partner
from gateway.reconciliation.models import Metric, PartnerReport
from partners.models import Partner

logger = logging.getLogger(__name__)


class _Digest(Hasher, Protocol):
    """A hash object (``hashlib.sha256()``): fed as a Hasher, read as hex."""

    def hexdigest(self) -> str: ...


class BatchIntegrityError(GatewayError):
    """A stored body no longer matches its recorded SHA-256: never send it."""

    code = "batch_integrity_error"
    title = "The batch body is damaged"


@dataclass(frozen=True)
class BatchDownload:
    """What to send for one download: the body (with its content headers) and proof headers."""

    batch: Batch
    body: WireBody
    body_sha256: str
    webhook_headers: dict[str, str]


@dataclass(frozen=True)
class ReportUpsertResult:
    """How many report rows were new and how many replaced an earlier value."""

    created: int
    updated: int


@transaction.atomic
def batch_download(*, partner: Partner, batch_id: uuid.UUID, now: datetime) -> BatchDownload:
    """The body of ``partner``'s batch, checked and signed now; records the first download.

    The NDJSON is read in pieces, inflated from storage, for its SHA-256 and
    the signatures (one pass when the body goes as stored): a window of a
    million exposures is half a gigabyte of it, never held whole.
    """
    batch = batch_for_partner(partner=partner, batch_id=batch_id)
    if batch.body_expired_at is not None:
        raise Gone(
            f"The body of batch {batch.pk} was deleted on {batch.body_expired_at:%Y-%m-%d} "
            "under our retention policy.",
            code="batch_body_expired",
        )
    timestamp = int(now.timestamp())
    try:
        # The same signer as pushes: every key in use now, one signature each.
        signer = partner_signer(partner=partner, timestamp=timestamp)
    except NoSigningKey as exc:
        raise GatewayError(
            "No signing secret is configured for your account.", code="signing_secret_missing"
        ) from exc

    def signed(chunks: Iterable[bytes]) -> dict[str, str]:
        return stream_signed_headers(
            signer=signer, msg_id=str(batch.pk), timestamp=timestamp, chunks=chunks
        )

    # The NDJSON's digest, fed by whichever pass reads it first.
    digest = hashlib.sha256()
    try:
        # Encrypted feeds get the JWE text, exactly as a push would carry it.
        wire = _wire_body(batch, ndjson_digest=digest)
    except DAMAGED_BODY_ERRORS as exc:
        raise _damaged(batch, exc) from exc
    try:
        body_sha256, signature = _checked_and_signed(
            batch=batch, wire=wire, digest=digest, signed=signed
        )
    except BaseException:
        wire.close()  # a JWE or NDJSON made for this download
        raise
    # Conditional update: only the first download sets the time, however
    # many requests race; later downloads leave it alone.
    marked = Batch.objects.filter(pk=batch.pk, first_downloaded_at__isnull=True).update(
        first_downloaded_at=now
    )
    if marked:
        logger.info("batch %s first downloaded by %s", batch.pk, partner.slug)
    return BatchDownload(batch=batch, body=wire, body_sha256=body_sha256, webhook_headers=signature)


def _wire_body(batch: Batch, *, ndjson_digest: Hasher) -> WireBody:
    try:
        return wire_body(feed=batch.feed, body_path=batch.body_path, ndjson_digest=ndjson_digest)
    except DeliveryError as exc:
        logger.error("batch %s cannot be served: %s", batch.pk, exc.detail)
        raise GatewayError(
            "This batch cannot be encrypted to your key; we have been alerted.",
            code="encryption_failed",
        ) from exc


def _checked_and_signed(
    *,
    batch: Batch,
    wire: WireBody,
    digest: _Digest,
    signed: Callable[[Iterable[bytes]], dict[str, str]],
) -> tuple[str, dict[str, str]]:
    """The NDJSON's SHA-256, checked against the stored one, and the body's signature headers.

    A body that goes as stored is read once for both; a made one (a JWE, or
    the NDJSON) was digested as ``wire_body`` made it, and is signed as made.
    """
    try:
        if wire.made is None:
            signature = signed(_digested(wire.signed_chunks(), digest))
        else:
            signature = signed(wire.signed_chunks())
    except DAMAGED_BODY_ERRORS as exc:
        raise _damaged(batch, exc) from exc
    body_sha256 = digest.hexdigest()
    if batch.body_sha256 and body_sha256 != batch.body_sha256:
        raise _damaged(batch, "it does not match its stored SHA-256")
    return body_sha256, signature


def _damaged(batch: Batch, why: Exception | str) -> BatchIntegrityError:
    reason = f"it cannot be inflated ({type(why).__name__})" if isinstance(why, Exception) else why
    logger.error("batch %s body is damaged: %s", batch.pk, reason)
    return BatchIntegrityError(f"Batch {batch.pk} cannot be served; we have been alerted.")


def _digested(chunks: Iterable[bytes], digest: Hasher) -> Iterator[bytes]:
    """``chunks`` as they are, each also fed to ``digest``."""
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


@transaction.atomic
def partner_reports_upsert(*, partner: Partner, body: object, now: datetime) -> ReportUpsertResult:
    """Validate every row of ``body``, then store all of them or none.

    A row whose (campaign, date, metric) was reported before replaces the
    earlier value: partners restate counts as late data reaches them.
    """
    today = now.astimezone(ZoneInfo(partner.reporting_time_zone)).date()
    rows = report_rows_parse(body, partner_slug=partner.slug, metrics=Metric.values, today=today)
    _check_assignments(partner=partner, rows=rows)

    existing = set(
        PartnerReport.objects.filter(
            partner=partner,
            campaign_id__in={row.campaign_id for row in rows},
            date__in={row.date for row in rows},
        ).values_list("campaign_id", "date", "metric")
    )
    PartnerReport.objects.bulk_create(
        [
            PartnerReport(
                partner=partner,
                campaign_id=row.campaign_id,
                date=row.date,
                metric=row.metric,
                value=row.value,
            )
            for row in rows
        ],
        update_conflicts=True,
        unique_fields=["partner", "campaign_id", "date", "metric"],
        update_fields=["value", "updated_at"],
    )
    created = sum(1 for row in rows if row.key not in existing)
    return ReportUpsertResult(created=created, updated=len(rows) - created)


def _check_assignments(*, partner: Partner, rows: list[ReportRow]) -> None:
    """ValidationFailed unless every row's campaign is assigned to ``partner`` on its date."""
    assignments = list(
        partner.campaign_assignments.filter(campaign_id__in={row.campaign_id for row in rows})
    )
    errors = []
    # ``rows`` holds every posted row in order (any invalid one has already
    # failed the request), so its index is the index the partner sent.
    for index, row in enumerate(rows):
        if any(a.campaign_id == row.campaign_id and a.covers(row.date) for a in assignments):
            continue
        errors.append(
            row_error(
                index=index,
                field="campaign_id",
                code="campaign_not_assigned",
                detail=f"Campaign {row.campaign_id!r} is not assigned to you on "
                f"{row.date.isoformat()}.",
            )
        )
    if errors:
        raise ValidationFailed(
            f"{len(errors)} of {len(rows)} rows are for campaigns not assigned to you; "
            "nothing was stored.",
            code="campaign_not_assigned",
            errors=errors,
        )
