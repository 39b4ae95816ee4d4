"""Admin for exposures (read-only evidence) and ingest tokens (issued through services)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from gateway.ingest.models import Exposure, IngestToken
from gateway.ingest.services import ingest_token_create, ingest_tokens_revoke


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin):
    """Exposures as our ad servers reported them; nobody edits the record of what happened."""

    list_display = [
        "event_id",
        "event_type",
        "media_type",
        "content_type",
        "campaign_id",
        "occurred_at",
        "received_at",
    ]
    list_filter = ["event_type", "media_type", "content_type"]
    date_hierarchy = "occurred_at"
    search_fields = ["event_id", "campaign_id"]
    fields = (
        "event_id",
        "occurred_at",
        "received_at",
        "event_type",
        "media_type",
        "content_type",
        "advertiser_id",
        "campaign_id",
        "line_item_id",
        "creative_id",
        "payload_pretty",
        "privacy_explain",
    )
    readonly_fields = fields
    # The table is large: counting it twice per page would dominate the page time.
    show_full_result_count = False

    @admin.display(description="payload")
    def payload_pretty(self, obj: Exposure) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    @admin.display(description="explain for partner")
    def privacy_explain(self, obj: Exposure) -> SafeString | str:
        # Links to each partner measuring the campaign: its privacy page explains every step.
        from partners.models import Partner

        partners = Partner.objects.filter(campaign_assignments__campaign_id=obj.campaign_id)
        links = [
            format_html(
                '<a href="{}?{}">{}</a>',
                reverse("admin:partners_partner_privacy", args=[partner.pk]),
                urlencode({"event_id": obj.event_id}),
                partner.slug,
            )
            for partner in partners.distinct().order_by("slug")
        ]
        return format_html_join(" · ", "{}", ((link,) for link in links)) or "no partner"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Exposure], search_term: str
    ) -> tuple[QuerySet[Exposure], bool]:
        # Exact matches only: the default icontains cannot use the event_id and
        # campaign_id indexes and would scan the whole table.
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(event_id=term) | Q(campaign_id=term)), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IngestToken)
class IngestTokenAdmin(admin.ModelAdmin):
    """Ingest tokens: adding one shows its plaintext once; revoke rather than delete."""

    list_display = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: IngestToken | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("name",)
        return ("name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: IngestToken | None = None
    ) -> list[str]:
        if obj is None:
            return []
        # Revocation goes through the action, so its time is the moment it happened.
        return ["prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(
        self, request: HttpRequest, obj: IngestToken, form: ModelForm, change: bool
    ) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        token, plaintext = ingest_token_create(name=obj.name)
        # The admin goes on with ``obj`` (log entry, redirect): make it the saved row.
        for model_field in IngestToken._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(token, model_field.attname))
        obj._state.adding = False
        messages.success(
            request,
            f"Ingest token for {token.name}: {plaintext} "
            "(copy it now: it is stored hashed and will not be shown again).",
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[IngestToken]) -> None:
        count = ingest_tokens_revoke(token_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
