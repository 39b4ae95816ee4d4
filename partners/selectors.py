"""Read queries on partner configuration used by the data path."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from partners.models import ApiKey, Partner
from partners.secrets import token_matches, token_prefix
from partners.services import API_KEY_KIND


def api_key_authenticate(*, plaintext: str) -> ApiKey | None:
    """The active API key matching ``plaintext``, or None. Updates last use."""
    prefix = token_prefix(plaintext, API_KEY_KIND)
    if prefix is None:
        return None
    api_key = (
        ApiKey.objects.select_related("partner")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    if api_key is None or not token_matches(plaintext, api_key.key_hash):
        return None
    now = timezone.now()
    # Only touch the row once a minute: every API call writing it would serialise them.
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


def campaign_scope_q(*, partner: Partner, field_prefix: str = "") -> Q:
    """A filter on exposures matching the partner's campaign assignments.

    Assignment dates are days in the partner's reporting time zone, turned into
    UTC instants here so the database compares plain timestamps. Assignments
    with the same dates share one clause, ``campaign_id IN (...)``, which
    PostgreSQL checks with one hash lookup per row however many campaigns the
    partner measures (a clause each cost a comparison each, per row). An empty
    assignment list matches nothing (fail closed).
    """
    tz = ZoneInfo(partner.reporting_time_zone)
    campaigns_by_dates: dict[tuple[date, date | None], list[str]] = defaultdict(list)
    for assignment in partner.campaign_assignments.order_by("campaign_id"):
        campaigns_by_dates[(assignment.starts_on, assignment.ends_on)].append(
            assignment.campaign_id
        )
    scope = Q(pk__in=[])
    for (starts_on, ends_on), campaign_ids in sorted(
        campaigns_by_dates.items(), key=lambda item: (item[0][0], item[0][1] or date.max)
    ):
        start = datetime.combine(starts_on, time.min, tzinfo=tz)
        clause = Q(**{f"{field_prefix}campaign_id__in": campaign_ids}) & Q(
            **{f"{field_prefix}occurred_at__gte": start}
        )
        if ends_on is not None:
            end = datetime.combine(ends_on + timedelta(days=1), time.min, tzinfo=tz)
            clause &= Q(**{f"{field_prefix}occurred_at__lt": end})
        scope |= clause
    return scope
