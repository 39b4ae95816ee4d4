"""Read queries of reconciliation: our counts and the partner's, per campaign and local day.

Every count is keyed by ``(campaign_id, day)`` where ``day`` is a calendar day
in the partner's reporting time zone, the unit partners report in. Each count
is of one metric: the partner's reports of it, and our events of the one type
that metric counts (``metrics.metric_event_type``), never every event type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate

from gateway.delivery.models import Batch
from gateway.ingest.models import Exposure
from gateway.privacy.filter import decide
from gateway.privacy.policy import PartnerPolicy
from gateway.reconciliation.metrics import metric_event_type
from gateway.reconciliation.models import PartnerReport
from partners.models import Feed, Partner
from partners.selectors import campaign_scope_q

CampaignDay = tuple[str, date]


def partners_to_reconcile(*, slug: str | None = None) -> list[Partner]:
    """The partner with ``slug`` whatever its status, or else every active partner."""
    if slug is not None:
        return list(Partner.objects.filter(slug=slug))
    return list(Partner.objects.filter(status=Partner.Status.ACTIVE).order_by("pk"))


def day_bounds(*, days: Sequence[date], time_zone: str) -> tuple[datetime, datetime]:
    """The instants where the first of ``days`` starts and the last one ends, locally."""
    tz = ZoneInfo(time_zone)
    start = datetime.combine(min(days), time.min, tzinfo=tz)
    end = datetime.combine(max(days) + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def partner_exposures(*, partner: Partner, days: Sequence[date], metric: str) -> QuerySet[Exposure]:
    """``partner``'s exposures on ``days`` that ``metric`` counts, annotated with ``local_day``.

    Only the event type ``metric`` maps to (impressions: "impression"), not the
    starts, quartiles, completes and clicks that follow it.
    """
    start, end = day_bounds(days=days, time_zone=partner.reporting_time_zone)
    return (
        Exposure.objects.filter(
            campaign_scope_q(partner=partner),
            event_type=metric_event_type(metric),
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        # The database does the time zone arithmetic (DST included) for the buckets.
        .annotate(local_day=TruncDate("occurred_at", tzinfo=ZoneInfo(partner.reporting_time_zone)))
        .filter(local_day__in=days)
    )


def internal_totals(
    *, partner: Partner, days: Sequence[date], metric: str
) -> dict[CampaignDay, int]:
    """How many exposures of ``metric`` we received per campaign and day, in one query."""
    rows = (
        partner_exposures(partner=partner, days=days, metric=metric)
        # local_day: annotated by partner_exposures (the stubs' plugin cannot follow it).
        .values("campaign_id", "local_day")  # type: ignore[misc]
        .annotate(count=Count("id"))
        .order_by()
    )
    return {(row["campaign_id"], row["local_day"]): row["count"] for row in rows}


def internal_eligible(
    *, partner: Partner, days: Sequence[date], metric: str, policy: PartnerPolicy
) -> dict[CampaignDay, int]:
    """How many of those exposures the partner's consent rule lets through.

    The consent decision is Python (the privacy filter), so payloads are
    streamed rather than loaded all at once; the event type is filtered in SQL
    first, so other types are never streamed.
    """
    counts: Counter[CampaignDay] = Counter()
    exposures = partner_exposures(partner=partner, days=days, metric=metric)
    # local_day: annotated by partner_exposures (the stubs' plugin cannot follow it).
    rows = exposures.values_list("campaign_id", "local_day", "payload")  # type: ignore[misc]
    for campaign_id, day, payload in rows.iterator(chunk_size=2000):
        if decide(payload, policy).eligible:
            counts[(campaign_id, day)] += 1
    return dict(counts)


def batches_reached_partner(*, partner: Partner) -> QuerySet[Batch]:
    """Batches the partner actually has: pushed and acknowledged, or pulled at least once."""
    reached = Q(status=Batch.Status.DELIVERED) & ~Q(feed__mode=Feed.Mode.PULL) | Q(
        feed__mode=Feed.Mode.PULL, first_downloaded_at__isnull=False
    )
    # A superseded batch's exposures are counted in the batch that replaced it.
    # Test deliveries carry one synthetic record, never exposures.
    return (
        Batch.objects.filter(reached, feed__partner=partner)
        .exclude(status=Batch.Status.SUPERSEDED)
        .exclude(kind=Batch.Kind.TEST)
    )


def internal_delivered(
    *, partner: Partner, days: Sequence[date], metric: str
) -> dict[CampaignDay, int]:
    """Exposures of ``metric`` per campaign and day in batches that reached the partner."""
    start, _end = day_bounds(days=days, time_zone=partner.reporting_time_zone)
    # Windows go by occurrence time, and late batches cover everything before
    # their frontier: no batch that ended before the day began holds any of
    # it (one day of slack for reporting time zones and clock skew).
    batches = batches_reached_partner(partner=partner).filter(
        window_end__gt=start - timedelta(days=1)
    )
    wanted = {day.isoformat(): day for day in days}
    wanted_type = metric_event_type(metric)
    counts: Counter[CampaignDay] = Counter()
    mappings = batches.values_list("delivered_by_campaign_day_event", flat=True)
    for by_campaign_day_event in mappings.iterator(chunk_size=500):
        for key, count in (by_campaign_day_event or {}).items():
            # Keys are "<campaign_id>|<day>|<event_type>". Split from the right: a
            # campaign id may itself contain "|", a date or an event type never does.
            campaign_day, _, event_type = key.rpartition("|")
            campaign_id, separator, day = campaign_day.rpartition("|")
            if separator and event_type == wanted_type and day in wanted:
                counts[(campaign_id, wanted[day])] += int(count)
    return dict(counts)


def reported_values(
    *, partner: Partner, days: Sequence[date], metric: str
) -> dict[CampaignDay, int]:
    """The values of ``metric`` the partner reported per campaign and day."""
    rows = PartnerReport.objects.filter(partner=partner, metric=metric, date__in=days).values_list(
        "campaign_id", "date", "value"
    )
    return {(campaign_id, day): value for campaign_id, day, value in rows}
