"""Write operations of the ingest side: storing exposures, issuing ingest tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from gateway.ingest.insert import ExposureRow, exposures_insert
from gateway.ingest.models import Exposure, IngestToken
from gateway.ingest.signals import exposures_committed
from gateway.ingest.validation import Problem, exposure_validate
from partners.secrets import token_issue

INGEST_TOKEN_KIND = "mgi"


@dataclass(frozen=True, slots=True)
class RowError:
    """A rejected record: its position in the batch, its event id if valid, what is wrong."""

    index: int
    event_id: str | None
    problems: list[Problem]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of a batch: every record is accepted, a duplicate, or rejected."""

    accepted: int
    duplicate: int
    rejected: int
    errors: list[RowError] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "errors": [
                {"index": e.index, "event_id": e.event_id, "problems": e.problems}
                for e in self.errors
            ],
        }


@transaction.atomic
def exposures_ingest(*, records: Sequence[Any], now: datetime | None = None) -> IngestResult:
    """Validate ``records`` and store the valid ones not seen before; ``now`` is received_at.

    Valid records are kept even when others in the batch are rejected: one bad
    row must not hold back an ad server's whole batch. The first record with a
    given event_id wins; later ones, in this batch or a later one, count as
    duplicates so that retries of a batch are safe.
    """
    now = now or timezone.now()
    errors: list[RowError] = []
    fresh: dict[str, ExposureRow] = {}
    repeats = 0
    for index, raw in enumerate(records):
        checked = exposure_validate(record=raw, now=now)
        if checked.record is None or checked.occurred_at is None:
            errors.append(RowError(index, checked.event_id, checked.problems))
            continue
        record = checked.record
        if record["event_id"] in fresh:
            repeats += 1
            continue
        fresh[record["event_id"]] = ExposureRow(occurred_at=checked.occurred_at, record=record)
    # The insert reports the rows it wrote; any other was stored before, by an
    # earlier batch or by a request racing this one, and is a duplicate either way.
    inserted = exposures_insert(rows=list(fresh.values()), received_at=now)
    if inserted:
        transaction.on_commit(partial(_announce, len(inserted)), robust=True)
    return IngestResult(
        accepted=len(inserted),
        duplicate=repeats + len(fresh) - len(inserted),
        rejected=len(errors),
        errors=errors,
    )


def _announce(count: int) -> None:
    exposures_committed.send(sender=Exposure, count=count)


@transaction.atomic
def ingest_token_create(*, name: str) -> tuple[IngestToken, str]:
    """Issue a token for one of our ad servers; the plaintext is returned once, never stored."""
    issued = token_issue(INGEST_TOKEN_KIND)
    token = IngestToken(name=name, prefix=issued.prefix, token_hash=issued.digest)
    token.full_clean()
    token.save()
    return token, issued.plaintext


def ingest_tokens_revoke(*, token_ids: Sequence[int], now: datetime | None = None) -> int:
    """Revoke the given tokens that are still active; returns how many were revoked."""
    # Only active tokens: revoking again must not move the recorded revocation time.
    return IngestToken.objects.filter(pk__in=token_ids, revoked_at__isnull=True).update(
        revoked_at=now or timezone.now()
    )
