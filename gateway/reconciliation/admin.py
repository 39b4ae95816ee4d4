"""Admin for reconciliation: where partner managers and engineers read discrepancies.

Both models are read-only here: discrepancies are recomputed by the
reconciliation job and reports come from partners, so an edit would only be
overwritten or would falsify what a partner told us.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from gateway.reconciliation.metrics import metric_event_type
from gateway.reconciliation.models import Discrepancy, PartnerReport

STATUS_COLOURS = {
    Discrepancy.Status.WITHIN_TOLERANCE: "#198754",
    Discrepancy.Status.EXCEEDS_TOLERANCE: "#dc3545",
    Discrepancy.Status.MISSING_PARTNER_REPORT: "#fd7e14",
    Discrepancy.Status.NO_INTERNAL_DATA: "#6f42c1",
}


class ReadOnlyAdmin(admin.ModelAdmin):
    """View permission only, whatever the user's other permissions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _admin_link(url_name: str, query: dict[str, str], label: str) -> SafeString | str:
    """A link to another admin changelist, or "-" while that admin is not installed."""
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return "-"
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(query), label)


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdmin):
    """Partner-reported against internal counts, with links to the evidence behind each row."""

    list_display = [
        "partner",
        "campaign_id",
        "date",
        "partner_value",
        "internal_total",
        "internal_eligible",
        "internal_delivered",
        "difference",
        "difference_pct",
        "status_badge",
        "batches_link",
        "exposures_link",
    ]
    list_filter = ["partner", "status", "date"]
    list_select_related = ["partner"]
    date_hierarchy = "date"
    search_fields = ["campaign_id"]
    fields = (
        "partner",
        "campaign_id",
        "date",
        "metric",
        "partner_value",
        "internal_total",
        "internal_eligible",
        "internal_delivered",
        "difference",
        "difference_pct",
        "tolerance_pct",
        "status_badge",
        "computed_at",
        "batches_link",
        "exposures_link",
    )
    readonly_fields = fields

    @admin.display(description="status", ordering="status")
    def status_badge(self, row: Discrepancy) -> SafeString:
        status = Discrepancy.Status(row.status)
        return format_html(
            '<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px;'
            'white-space:nowrap">{}</span>',
            STATUS_COLOURS[status],
            status.label,
        )

    @admin.display(description="batches")
    def batches_link(self, row: Discrepancy) -> SafeString | str:
        # All of the partner's batches: late exposures of a day can be in any
        # later window, so a window filter would hide some of them.
        return _admin_link(
            "admin:delivery_batch_changelist",
            {"feed__partner__id__exact": str(row.partner_id)},
            "batches",
        )

    @admin.display(description="exposures")
    def exposures_link(self, row: Discrepancy) -> SafeString | str:
        # The campaign's exposures on the row's local day, as UTC instants, of
        # the event type the row's metric counts: the ones in internal_total.
        tz = ZoneInfo(row.partner.reporting_time_zone)
        start = datetime.combine(row.date, time.min, tzinfo=tz)
        end = datetime.combine(row.date + timedelta(days=1), time.min, tzinfo=tz)
        return _admin_link(
            "admin:ingest_exposure_changelist",
            {
                "campaign_id": row.campaign_id,
                "event_type": metric_event_type(row.metric),
                "occurred_at__gte": start.isoformat(),
                "occurred_at__lt": end.isoformat(),
            },
            "exposures",
        )


@admin.register(PartnerReport)
class PartnerReportAdmin(ReadOnlyAdmin):
    """What partners posted to ``/api/v1/partner/reports``, latest value per key."""

    list_display = ["partner", "campaign_id", "date", "metric", "value", "updated_at"]
    list_filter = ["partner", "metric", "date"]
    list_select_related = ["partner"]
    date_hierarchy = "date"
    search_fields = ["campaign_id"]
    fields = ("partner", "campaign_id", "date", "metric", "value", "created_at", "updated_at")
    readonly_fields = fields
