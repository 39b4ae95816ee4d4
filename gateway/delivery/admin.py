"""Django admin for delivery: batches, their attempts and feed notices, read-only but for actions.

Every change goes through ``gateway.delivery.services`` or ``gateway.delivery.replay``;
the admin never edits a batch's fields. Batch bodies can be large, so every
query here defers them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from gateway.delivery.first_signature import FirstSignature
from gateway.delivery.models import Batch, DeliveryAttempt, FeedNotice
from gateway.delivery.replay import (
    BulkReport,
    batches_rebuild,
    batches_replay,
    dead_q,
    notices_acknowledge,
)
from gateway.delivery.services import batch_retry

# Status badge colours; failed is the one an operator must not miss.
STATUS_COLOURS = {
    Batch.Status.PENDING: "#6c757d",
    Batch.Status.BUILDING: "#6c757d",
    Batch.Status.EMPTY: "#adb5bd",
    Batch.Status.READY: "#0d6efd",
    Batch.Status.SENDING: "#0d6efd",
    Batch.Status.RETRY_SCHEDULED: "#fd7e14",
    Batch.Status.DELIVERED: "#198754",
    Batch.Status.FAILED: "#dc3545",
    Batch.Status.SUPERSEDED: "#adb5bd",
}
NOTICE_COLOURS = {
    FeedNotice.Level.INFO: "#0d6efd",
    FeedNotice.Level.WARNING: "#fd7e14",
    FeedNotice.Level.ERROR: "#dc3545",
}
OUTCOME_COLOURS = {
    DeliveryAttempt.Outcome.IN_PROGRESS: "#0d6efd",
    DeliveryAttempt.Outcome.SUCCEEDED: "#198754",
    DeliveryAttempt.Outcome.TRANSIENT_FAILURE: "#fd7e14",
    DeliveryAttempt.Outcome.PERMANENT_FAILURE: "#dc3545",
}


def _badge(label: str, colour: str, *, alarm: bool = False) -> SafeString:
    return format_html(
        '<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px;'
        'white-space:nowrap">{}{}</span>',
        colour,
        "⚠ " if alarm else "",
        label,
    )


class DeliveryAttemptInline(admin.TabularInline):
    """The attempts of one batch, oldest first, read-only."""

    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "outcome",
        "http_status",
        "started_at",
        "duration_ms",
        "webhook_timestamp",
        "error",
        "response_excerpt",
        "task_id",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Batch | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Batch | None = None) -> bool:
        return False


class DeadBatchFilter(admin.SimpleListFilter):
    """ "Dead batches": failed ones of feeds we deliver, waiting for an operator to retry them."""

    title = "dead batches"
    parameter_name = "dead"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Dead (failed: retries exhausted or permanent error)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Batch]) -> QuerySet[Batch]:
        return queryset.filter(dead_q()) if self.value() == "yes" else queryset


class BodyFilter(admin.SimpleListFilter):
    """Batches whose body is kept, or was deleted under the retention policy."""

    title = "body"
    parameter_name = "body"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("kept", "Kept"), ("expired", "Expired (retention)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Batch]) -> QuerySet[Batch]:
        if self.value() == "kept":
            return queryset.filter(body_expired_at__isnull=True)
        if self.value() == "expired":
            return queryset.filter(body_expired_at__isnull=False)
        return queryset


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    """Batches per feed and window; failed ones stand out in red and have their own filter."""

    list_display = [
        "feed",
        "sequence",
        "kind",
        "window",
        "status_badge",
        "candidate_count",
        "delivered_count",
        "attempt_count",
        "delivered_at",
    ]
    list_filter = [DeadBatchFilter, BodyFilter, "status", "kind", "feed__partner", "feed__mode"]
    list_select_related = ["feed__partner"]
    search_fields = ["=id", "feed__name", "feed__partner__slug"]
    date_hierarchy = "window_start"
    actions = ["replay", "retry_now", "rebuild"]
    inlines = [DeliveryAttemptInline]
    fields = (
        "id",
        "feed",
        "sequence",
        "kind",
        "part_of_claim",
        "window_start",
        "window_end",
        "status_badge",
        "last_error",
        "created_at",
        "built_at",
        "delivered_at",
        "next_attempt_at",
        "attempt_count",
        "attempt_round_start",
        "superseded_by",
        "claimed_at",
        "queued_at",
        "candidate_count",
        "delivered_count",
        "dropped",
        "transformed",
        "suppressed_cells",
        "gvl_version",
        "delivered_by_campaign_day_event",
        "body_sha256",
        "body_bytes",
        "signed_at_build",
        "first_downloaded_at",
        "body_expired_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Batch | None = None) -> bool:
        # Fields only change through services; the actions check their own permission.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Batch | None = None) -> bool:
        # Batches are the audit trail of what each partner received.
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Who may run the actions: users allowed to change batches."""
        return request.user.has_perm("delivery.change_batch")

    @admin.display(description="window", ordering="window_start")
    def window(self, batch: Batch) -> str:
        # Stored and shown in UTC; the end drops its date when it is the same day.
        same_day = batch.window_end.date() == batch.window_start.date()
        end = batch.window_end.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
        return f"{batch.window_start:%Y-%m-%d %H:%M:%S} → {end} UTC"

    @admin.display(description="status", ordering="status")
    def status_badge(self, batch: Batch) -> SafeString:
        status = Batch.Status(batch.status)
        return _badge(status.label, STATUS_COLOURS[status], alarm=status == Batch.Status.FAILED)

    @admin.display(description="dropped by reason")
    def dropped(self, batch: Batch) -> SafeString | str:
        return _counts_list(batch.dropped_by_reason) or self.get_empty_value_display()

    @admin.display(description="part")
    def part_of_claim(self, batch: Batch) -> SafeString | str:
        if batch.part_count <= 1:
            return "the whole claim (one part)"
        if batch.first_part_id is None:
            return f"1 of {batch.part_count}"
        first_url = reverse("admin:delivery_batch_change", args=[batch.first_part_id])
        return format_html(
            '{} of {} (<a href="{}">first part</a>)', batch.part, batch.part_count, first_url
        )

    @admin.display(description="signed at build for the first attempt")
    def signed_at_build(self, batch: Batch) -> str:
        first = FirstSignature.from_json(batch.first_signature)
        if first is None:
            return "no: every attempt signs when it starts"
        signed_at = datetime.fromtimestamp(first.timestamp, tz=UTC)
        return f"at {signed_at:%Y-%m-%d %H:%M:%S} UTC, keys {', '.join(first.key_ids)}"

    @admin.display(description="sent with fields removed, by reason")
    def transformed(self, batch: Batch) -> SafeString | str:
        return _counts_list(batch.transformed_by_reason) or self.get_empty_value_display()

    @admin.action(
        description="Replay: send again as new attempts of the same batches (same webhook-id)",
        permissions=["operate"],
    )
    def replay(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        report = batches_replay(ids=_ids_in_order(queryset))
        self._report_bulk(request, report, verb="queued for sending again")

    @admin.action(
        description="Retry now (failed or retry-scheduled push batches)",
        permissions=["operate"],
    )
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        done = sum(batch_retry(batch_id=batch_id) for batch_id in ids)
        self._report(request, done=done, total=len(ids), verb="queued for sending")

    @admin.action(
        description="Re-build under the current configuration as new batches (old ones superseded)",
        permissions=["operate"],
    )
    def rebuild(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        # Oldest first, so the new batches are numbered in the order of the old ones.
        report = batches_rebuild(ids=_ids_in_order(queryset))
        self._report_bulk(request, report, verb="superseded by new batches")

    def _report(self, request: HttpRequest, *, done: int, total: int, verb: str) -> None:
        self.message_user(request, f"{done} of {total} batches {verb}.", messages.SUCCESS)
        if done < total:
            self.message_user(
                request,
                f"{total - done} batches were skipped: their status does not allow it.",
                messages.WARNING,
            )

    def _report_bulk(self, request: HttpRequest, report: BulkReport, *, verb: str) -> None:
        self.message_user(
            request, f"{len(report.done)} of {report.total} batches {verb}.", messages.SUCCESS
        )
        for reason, ids in report.skipped.items():
            self.message_user(request, f"{len(ids)} skipped: {reason}.", messages.WARNING)


def _ids_in_order(queryset: QuerySet[Batch]) -> list[uuid.UUID]:
    return list(queryset.order_by("feed_id", "sequence").values_list("pk", flat=True))


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(admin.ModelAdmin):
    """Every POST to a partner, newest first; read-only."""

    list_display = [
        "batch",
        "number",
        "outcome_badge",
        "http_status",
        "started_at",
        "duration_ms",
        "error",
    ]
    list_filter = ["outcome", "http_status", "batch__feed__partner"]
    list_select_related = ["batch__feed__partner"]
    search_fields = ["=batch__id", "task_id"]
    ordering = ["-started_at"]
    date_hierarchy = "started_at"

    def get_readonly_fields(
        self, request: HttpRequest, obj: DeliveryAttempt | None = None
    ) -> list[str]:
        return [f.name for f in DeliveryAttempt._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: DeliveryAttempt | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: DeliveryAttempt | None = None
    ) -> bool:
        return False

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, attempt: DeliveryAttempt) -> SafeString:
        outcome = DeliveryAttempt.Outcome(attempt.outcome)
        return _badge(
            outcome.label,
            OUTCOME_COLOURS[outcome],
            alarm=outcome == DeliveryAttempt.Outcome.PERMANENT_FAILURE,
        )


def _counts_list(counts: dict[str, int]) -> SafeString | None:
    """Reason counts as a list, largest first; None when there are none."""
    if not counts:
        return None
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return format_html(
        "<ul style='margin:0;padding-left:1em'>{}</ul>",
        format_html_join("", "<li>{}: {}</li>", rows),
    )


@admin.register(FeedNotice)
class FeedNoticeAdmin(admin.ModelAdmin):
    """What operators must see about feeds (disabled, circuit open, gone), to acknowledge."""

    list_display = ["created_at", "feed", "level_badge", "code", "message", "acknowledged_at"]
    list_filter = [
        ("acknowledged_at", admin.EmptyFieldListFilter),
        "level",
        "code",
        "feed__partner",
    ]
    list_select_related = ["feed__partner"]
    search_fields = ["code", "message", "feed__name", "feed__partner__slug"]
    date_hierarchy = "created_at"
    actions = ["acknowledge"]

    def get_readonly_fields(self, request: HttpRequest, obj: FeedNotice | None = None) -> list[str]:
        return [f.name for f in FeedNotice._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Notices are written by the gateway when something happens to a feed.
        return False

    def has_change_permission(self, request: HttpRequest, obj: FeedNotice | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: FeedNotice | None = None) -> bool:
        return False

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("delivery.change_feednotice")

    @admin.display(description="level", ordering="level")
    def level_badge(self, notice: FeedNotice) -> SafeString:
        level = FeedNotice.Level(notice.level)
        return _badge(level.label, NOTICE_COLOURS[level], alarm=level == FeedNotice.Level.ERROR)

    @admin.action(description="Acknowledge the selected notices", permissions=["acknowledge"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[FeedNotice]) -> None:
        done = notices_acknowledge(notices=queryset)
        self.message_user(request, f"{done} notices acknowledged.", messages.SUCCESS)
