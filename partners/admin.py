"""Django admin for partner managers: partners, feeds, campaigns, consent rules, credentials.

Secrets are created through ``partners.services`` and shown exactly once, in a
message after the save that created them; the database keeps only ciphertext
(signing secrets, pseudonym keys) or a hash (API keys).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from partners.models import (
    ApiKey,
    CampaignAssignment,
    ConsentRule,
    Feed,
    Partner,
    SigningSecret,
)
from partners.services import (
    api_key_create,
    api_key_revoke,
    partner_provision,
    signing_secret_rotate,
)


def _show_once(request: HttpRequest, label: str, plaintext: str) -> None:
    messages.warning(
        request,
        f"{label}: {plaintext}  — copy it now and hand it to the partner over a secure "
        "channel; it will not be shown again.",
    )


class ConsentRuleInline(admin.StackedInline):
    model = ConsentRule
    can_delete = False
    extra = 0
    min_num = 0
    max_num = 1


class CampaignAssignmentInline(admin.TabularInline):
    model = CampaignAssignment
    extra = 0


class FeedInline(admin.TabularInline):
    model = Feed
    extra = 0
    fields = ["name", "mode", "endpoint_url", "gzip", "batch_window_seconds", "enabled"]
    show_change_link = True


class SigningSecretInline(admin.TabularInline):
    model = SigningSecret
    extra = 0
    fields = ["created_at", "revoked_at"]
    readonly_fields = ["created_at", "revoked_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Partner | None = None) -> bool:
        return False


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Partner | None = None) -> bool:
        return False


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "status",
        "gvl_vendor_id",
        "reporting_time_zone",
        "reconciliation_tolerance_pct",
        "feed_count",
    ]
    list_filter = ["status"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [
        ConsentRuleInline,
        FeedInline,
        CampaignAssignmentInline,
        ApiKeyInline,
        SigningSecretInline,
    ]
    actions = ["rotate_signing_secret", "create_api_key"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Partner]:
        return super().get_queryset(request).annotate(_feed_count=Count("feeds"))

    @admin.display(description="Feeds", ordering="_feed_count")
    def feed_count(self, obj: Partner) -> int:
        return obj._feed_count  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # After inlines, so a consent rule entered on the add form wins over the default.
        secret = partner_provision(partner=form.instance)
        if secret:
            _show_once(request, f"Signing secret of {form.instance.slug}", secret)

    @admin.action(description="Rotate signing secret (old one stops signing now)")
    def rotate_signing_secret(self, request: HttpRequest, queryset: QuerySet[Partner]) -> None:
        for partner in queryset:
            _show_once(
                request,
                f"New signing secret of {partner.slug}",
                signing_secret_rotate(partner=partner),
            )

    @admin.action(description="Create an API key")
    def create_api_key(self, request: HttpRequest, queryset: QuerySet[Partner]) -> None:
        for partner in queryset:
            _key, plaintext = api_key_create(partner=partner, name="created in admin")
            _show_once(request, f"API key of {partner.slug}", plaintext)


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "mode",
        "endpoint_url",
        "gzip",
        "batch_window_seconds",
        "enabled",
        "deliver_from",
    ]
    list_filter = ["mode", "enabled", "partner"]
    list_select_related = ["partner"]
    search_fields = ["name", "partner__slug", "endpoint_url"]
    raw_id_fields = ["partner"]


@admin.register(CampaignAssignment)
class CampaignAssignmentAdmin(admin.ModelAdmin):
    list_display = ["campaign_id", "partner", "starts_on", "ends_on"]
    list_filter = ["partner"]
    list_select_related = ["partner"]
    search_fields = ["campaign_id"]
    date_hierarchy = "starts_on"


@admin.register(ConsentRule)
class ConsentRuleAdmin(admin.ModelAdmin):
    list_display = [
        "partner",
        "required_tcf_purposes",
        "require_vendor_consent",
        "honour_us_privacy_opt_out",
        "honour_gpc",
        "honour_coppa",
        "honour_lmt",
    ]
    list_select_related = ["partner"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["partner", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["partner", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["partner"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        # Once issued a key's owner never changes; revoke and issue a new one.
        return [*self.readonly_fields, "partner", "name"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            return
        api_key, plaintext = api_key_create(partner=obj.partner, name=obj.name)
        obj.pk, obj.prefix, obj.key_hash = api_key.pk, api_key.prefix, api_key.key_hash
        _show_once(request, f"API key of {obj.partner.slug}", plaintext)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
