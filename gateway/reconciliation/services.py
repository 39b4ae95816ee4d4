"""Reconciliation: compare partner-reported counts with ours and store the result."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from gateway.delivery.policies import policy_for
from gateway.errors import GatewayError
from gateway.reconciliation import selectors
from gateway.reconciliation.maths import discrepancy
from gateway.reconciliation.models import Discrepancy, Metric
from gateway.reconciliation.periods import local_days
from partners.models import Partner

logger = logging.getLogger(__name__)

# Everything but the key is recomputed on each run.
RECOMPUTED_FIELDS = [
    "partner_value",
    "internal_total",
    "internal_eligible",
    "internal_delivered",
    "difference",
    "difference_pct",
    "tolerance_pct",
    "status",
    "computed_at",
]


class ReconciliationFailed(GatewayError):
    """Reconciliation raised for some partners; the others were still reconciled."""

    code = "reconciliation_failed"
    title = "Reconciliation failed"


@transaction.atomic
def reconcile_partner(
    *, partner: Partner, days: Sequence[date], now: datetime
) -> list[Discrepancy]:
    """Recompute ``partner``'s discrepancy rows for ``days`` (local days); returns them.

    A row exists for each campaign and day with impressions (exposures of that
    event type only) or a partner report. Rows of those days that no longer
    have either are deleted, so the table always matches the data it was
    computed from.
    """
    days = sorted(set(days))
    if not days:
        return []
    # The one metric partners report so far; each selector counts only the
    # event type it maps to (metrics.EVENT_TYPE_BY_METRIC).
    metric = Metric.IMPRESSIONS
    totals = selectors.internal_totals(partner=partner, days=days, metric=metric)
    eligible = selectors.internal_eligible(
        partner=partner, days=days, metric=metric, policy=policy_for(partner=partner)
    )
    delivered = selectors.internal_delivered(partner=partner, days=days, metric=metric)
    reported = selectors.reported_values(partner=partner, days=days, metric=metric)

    rows = []
    for campaign_id, day in sorted(totals.keys() | reported.keys(), key=lambda k: (k[1], k[0])):
        key = (campaign_id, day)
        comparison = discrepancy(
            partner_value=reported.get(key),
            delivered=delivered.get(key, 0),
            tolerance_pct=partner.reconciliation_tolerance_pct,
        )
        rows.append(
            Discrepancy(
                partner=partner,
                campaign_id=campaign_id,
                date=day,
                metric=metric,
                partner_value=reported.get(key),
                internal_total=totals.get(key, 0),
                internal_eligible=eligible.get(key, 0),
                internal_delivered=delivered.get(key, 0),
                difference=comparison.difference,
                difference_pct=comparison.difference_pct,
                tolerance_pct=partner.reconciliation_tolerance_pct,
                status=comparison.status.value,
                computed_at=now,
            )
        )
    Discrepancy.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["partner", "campaign_id", "date", "metric"],
        update_fields=RECOMPUTED_FIELDS,
    )
    _delete_stale(partner=partner, days=days, metric=metric, rows=rows)
    return rows


def _delete_stale(
    *, partner: Partner, days: Sequence[date], metric: str, rows: Sequence[Discrepancy]
) -> None:
    kept: dict[date, set[str]] = defaultdict(set)
    for row in rows:
        kept[row.date].add(row.campaign_id)
    stale = reduce(or_, (Q(date=day) & ~Q(campaign_id__in=kept[day]) for day in days))
    Discrepancy.objects.filter(stale, partner=partner, metric=metric).delete()


def reconcile_partners(
    *, partners: Iterable[Partner], now: datetime, day_count: int, last_day: date | None = None
) -> list[Discrepancy]:
    """Reconcile each partner over ``day_count`` local days ending ``last_day`` (default today).

    Each partner is its own transaction, and one partner's failure does not
    stop the others; it is logged and raised once all have been tried.
    """
    results: list[Discrepancy] = []
    failed: list[str] = []
    for partner in partners:
        days = local_days(
            now=now, time_zone=partner.reporting_time_zone, count=day_count, last=last_day
        )
        try:
            results.extend(reconcile_partner(partner=partner, days=days, now=now))
        except Exception:
            logger.exception("reconciliation failed for partner %s", partner.slug)
            failed.append(partner.slug)
    if failed:
        raise ReconciliationFailed(f"Reconciliation failed for: {', '.join(failed)}.")
    return results


def reconcile_all(*, now: datetime) -> list[Discrepancy]:
    """Reconcile every active partner over the last RECONCILIATION_LOOKBACK_DAYS local days."""
    return reconcile_partners(
        partners=selectors.partners_to_reconcile(),
        now=now,
        day_count=settings.RECONCILIATION_LOOKBACK_DAYS,
    )
