"""Django admin for partner managers: partners, feeds, campaigns, consent rules, credentials.

Secrets are created through ``partners.services`` and shown exactly once, in a
message after the save that created them; the database keeps only ciphertext
(signing secrets, pseudonym keys) or a hash (API keys).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from gateway.errors import GatewayError
from gateway.privacy.gvl import GvlError, parse_gvl
from partners.models import (
    ActivityRule,
    ApiKey,
    CampaignAssignment,
    ConsentRule,
    Feed,
    GlobalVendorList,
    Partner,
    PrivacySettings,
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


class ActivityRuleInline(admin.TabularInline):
    """Activity controls, validated by ``ActivityRule.clean``; the first matching rule decides."""

    model = ActivityRule
    extra = 0
    fields = [
        "activity",
        "position",
        "effect",
        "regimes",
        "gpp_sections",
        "countries",
        "regions",
        "gpc",
        "coppa",
        "note",
    ]
    ordering = ["activity", "position"]


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
    readonly_fields = ["privacy_tools"]
    inlines = [
        ConsentRuleInline,
        ActivityRuleInline,
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

    @admin.display(description="Privacy")
    def privacy_tools(self, obj: Partner) -> SafeString | str:
        if obj.pk is None:
            return "Save the partner first."
        url = reverse("admin:partners_partner_privacy", args=[obj.pk])
        return format_html('<a href="{}">Preview and explain decisions for this partner</a>', url)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.privacy_view)
        return [
            path("<path:object_id>/privacy/", view, name="partners_partner_privacy"),
            *super().get_urls(),
        ]

    def privacy_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Preview: paste an exposure (or give an event id) and see every step for this partner."""
        partner = get_object_or_404(Partner, pk=object_id)
        if not self.has_view_permission(request, partner):
            raise PermissionDenied
        form = PrivacyPreviewForm(request.POST or request.GET or None, partner=partner)
        explanation = error = None
        if form.is_bound and form.is_valid():
            explanation, error = _explanation(partner=partner, data=form.cleaned_data)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Privacy decisions for {partner.name}",
            "opts": self.model._meta,
            "original": partner,
            "form": form,
            "explanation": explanation,
            "explanation_json": json.dumps(explanation, indent=2) if explanation else "",
            "error": error,
        }
        return TemplateResponse(request, "admin/partners/partner/privacy.html", context)

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


class PrivacyPreviewForm(forms.Form):
    """One exposure, stored (event id) or pasted (JSON), and optionally the feed to use."""

    event_id = forms.CharField(required=False, max_length=200)
    payload = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 100}),
        help_text="An exposure record as JSON; used when no event id is given.",
    )
    feed = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, partner: Partner, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = Feed.objects.filter(partner=partner).values_list("name", flat=True)
        self.fields["feed"].choices = [("", "first enabled feed"), *((n, n) for n in names)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("event_id") and not data.get("payload"):
            raise forms.ValidationError("Give an event id or paste an exposure.")
        if not data.get("event_id"):
            try:
                data["parsed_payload"] = json.loads(data["payload"])
            except ValueError as exc:
                raise forms.ValidationError(f"The exposure is not valid JSON: {exc}") from exc
        return data


def _explanation(*, partner: Partner, data: dict[str, Any]) -> tuple[dict | None, str | None]:
    from gateway.explain.selectors import explain_feed, explanation_for, exposure_payload

    try:
        payload = (
            exposure_payload(event_id=data["event_id"])
            if data.get("event_id")
            else data["parsed_payload"]
        )
        feed = explain_feed(partner=partner, name=data.get("feed") or None)
        return explanation_for(partner=partner, payload=payload, feed=feed), None
    except (GatewayError, ValueError) as exc:
        return None, str(exc)


@admin.register(ActivityRule)
class ActivityRuleAdmin(admin.ModelAdmin):
    list_display = ["partner", "activity", "position", "effect", "regimes", "countries", "note"]
    list_filter = ["activity", "effect", "partner"]
    list_select_related = ["partner"]
    raw_id_fields = ["partner"]
    ordering = ["partner__name", "activity", "position"]


class GlobalVendorListForm(forms.ModelForm):
    """Upload of a vendor-list.json: versions and dates are read from the file itself."""

    upload = forms.FileField(help_text="The IAB vendor-list.json (GVL specification 3).")

    class Meta:
        model = GlobalVendorList
        fields: list[str] = []

    def clean_upload(self) -> Any:
        raw = self.cleaned_data["upload"].read()
        try:
            gvl = parse_gvl(raw)
        except GvlError as exc:
            raise forms.ValidationError(str(exc)) from exc
        if GlobalVendorList.objects.filter(version=gvl.vendor_list_version).exists():
            raise forms.ValidationError(f"GVL v{gvl.vendor_list_version} is already uploaded.")
        self.instance.document = json.loads(raw)
        self.instance.version = gvl.vendor_list_version
        self.instance.tcf_policy_version = gvl.tcf_policy_version
        self.instance.last_updated = gvl.last_updated
        return raw

    def _post_clean(self) -> None:
        # The model's own validation (GlobalVendorList.clean) has nothing to check
        # until a file was read, and names fields this form does not show.
        if "upload" in self.cleaned_data:
            super()._post_clean()


@admin.register(GlobalVendorList)
class GlobalVendorListAdmin(admin.ModelAdmin):
    """GVL snapshots: uploaded once, never edited (batches record the version they used)."""

    list_display = ["version", "tcf_policy_version", "last_updated", "uploaded_at"]
    readonly_fields = ["version", "tcf_policy_version", "last_updated", "uploaded_at", "vendors"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = GlobalVendorListForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["upload"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Vendors")
    def vendors(self, obj: GlobalVendorList) -> int:
        return len((obj.document or {}).get("vendors", {}))


class PrivacySettingsForm(forms.ModelForm):
    class Meta:
        model = PrivacySettings
        fields = ["gpc_states", "default_regime", "pseudonym_key_overlap_hours"]

    def clean_gpc_states(self) -> list[str]:
        states = self.cleaned_data["gpc_states"]
        if not isinstance(states, list) or not all(
            isinstance(s, str) and len(s) == 2 and s.isascii() and s.isalpha() for s in states
        ):
            raise forms.ValidationError('Must be a list of two-letter state codes, e.g. ["CA"].')
        return sorted({s.upper() for s in states})


@admin.register(PrivacySettings)
class PrivacySettingsAdmin(admin.ModelAdmin):
    """The single gateway-wide settings row (created by a migration): edit it, never add more."""

    form = PrivacySettingsForm
    list_display = ["__str__", "default_regime", "gpc_states", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not PrivacySettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PrivacySettings, form, change: bool) -> None:
        obj.pk = 1  # the policies read pk=1
        super().save_model(request, obj, form, change)


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
    raw_id_fields = ["partner"]


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
