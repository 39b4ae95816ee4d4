"""Django admin for partner managers: partners, feeds, campaigns, consent rules, credentials.

Secrets are created through ``partners.services`` and shown exactly once, in a
message after the save that created them; the database keeps only ciphertext
(signing keys, pseudonym keys) or a hash (API keys). Ed25519 private keys are
never shown at all: partners verify with the public key.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from gateway.delivery.health_selectors import FeedHealth, feed_recent_batches, feeds_health
from gateway.delivery.models import FeedNotice
from gateway.delivery.replay import TestDeliveryRefused, feed_test_delivery, notices_acknowledge
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
    SigningKeyIssued,
    api_key_create,
    api_key_revoke,
    partner_provision,
    signing_key_overlap_default,
    signing_key_retire,
    signing_key_revoke,
    signing_key_rotate,
    signing_key_state,
    signing_keys_rotate,
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


def _show_signing_key(request: HttpRequest, issued: SigningKeyIssued) -> None:
    """Show what the partner needs: a v1 secret once, or a v1a public key (and where it lives)."""
    key = issued.key
    if issued.secret:
        label = f"New signing secret of {key.partner.slug} ({key.key_id})"
        _show_once(request, label, issued.secret)
        return
    jwks = request.build_absolute_uri(
        reverse("partner-jwks", kwargs={"partner_slug": key.partner.slug})
    )
    messages.info(
        request,
        f"New Ed25519 signing key of {key.partner.slug} ({key.key_id}): public key "
        f"{issued.public_key} — also published at {jwks}. The private key never leaves us.",
    )


class SigningKeyStateMixin:
    """The ``state`` column: pending, active, overlap (still signing), retired or revoked."""

    @admin.display(description="State")
    def state(self, obj: SigningSecret) -> str:
        if obj.pk is None:
            return ""
        state = signing_key_state(key=obj, at=timezone.now())
        return SigningSecret.State(state).label


class SigningSecretInline(SigningKeyStateMixin, admin.TabularInline):
    model = SigningSecret
    extra = 0
    fields = ("key_id", "algorithm", "state", "activates_at", "retires_at", "revoked_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

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
    actions = ["rotate_signing_keys", "create_api_key"]

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

    @admin.action(description="Rotate signing keys (old ones keep signing for the overlap)")
    def rotate_signing_keys(self, request: HttpRequest, queryset: QuerySet[Partner]) -> None:
        for partner in queryset:
            for issued in signing_keys_rotate(partner=partner):
                _show_signing_key(request, issued)

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
        feed_field = cast(forms.ChoiceField, self.fields["feed"])
        feed_field.choices = [("", "first enabled feed"), *((n, n) for n in names)]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
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
            super()._post_clean()  # type: ignore[misc]  # ModelForm's, missing from the stubs


@admin.register(GlobalVendorList)
class GlobalVendorListAdmin(admin.ModelAdmin):
    """GVL snapshots: uploaded once, never edited (batches record the version they used)."""

    list_display = ["version", "tcf_policy_version", "last_updated", "uploaded_at"]
    readonly_fields = ["version", "tcf_policy_version", "last_updated", "uploaded_at", "vendors"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = GlobalVendorListForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("upload",) if obj is None else tuple(self.readonly_fields)

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
    """Feeds with their delivery health at a glance (``gateway.delivery.health_selectors``).

    The list shows last success, failure streak, circuit, backlog, latency and
    open notices per feed, computed for the whole page in a few grouped
    queries; the change page shows them in full with the newest batches.
    """

    list_display = [
        "__str__",
        "mode",
        "enabled",
        "last_success",
        "failure_streak",
        "circuit",
        "backlog",
        "latency",
        "open_notices",
    ]
    list_filter = ["mode", "enabled", "partner"]
    list_select_related = ["partner"]
    search_fields = ["name", "partner__slug", "endpoint_url"]
    raw_id_fields = ["partner"]
    readonly_fields = ["health", "recent_batches"]
    actions = ["send_test_delivery", "acknowledge_notices"]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # Evaluates the page's queryset once (the template reuses these rows)
        # and gives every row its health, so columns do not query per row.
        feeds = list(changelist.result_list)
        health = feeds_health(feeds=feeds, at=timezone.now())
        for feed in feeds:
            feed._health = health[feed.pk]
        return changelist

    def _health(self, feed: Feed) -> FeedHealth:
        health = getattr(feed, "_health", None)
        if health is None:
            health = feeds_health(feeds=[feed], at=timezone.now())[feed.pk]
            feed._health = health  # type: ignore[attr-defined]
        return health

    @admin.display(description="last success")
    def last_success(self, feed: Feed) -> str:
        ago = self._health(feed).since_last_success
        return "never" if ago is None else f"{_duration_text(ago)} ago"

    @admin.display(description="failing")
    def failure_streak(self, feed: Feed) -> SafeString | str:
        health = self._health(feed)
        if not health.failed_attempts:
            return "—"
        return format_html(
            '<span style="color:#dc3545">{} attempts over {}</span>',
            health.failed_attempts,
            _duration_text(health.failing_for),
        )

    @admin.display(description="circuit")
    def circuit(self, feed: Feed) -> SafeString | str:
        snapshot = self._health(feed).circuit
        if snapshot is None:
            return "—"
        return format_html(
            '<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px">{}</span>',
            CIRCUIT_COLOURS[snapshot.state],
            snapshot.state.replace("_", "-"),
        )

    @admin.display(description="backlog")
    def backlog(self, feed: Feed) -> str:
        health = self._health(feed)
        if not health.backlog_batches:
            return "—"
        return f"{health.backlog_batches} batches, {health.backlog_events} events"

    @admin.display(description="latency p50 / p95")
    def latency(self, feed: Feed) -> str:
        latency = self._health(feed).latency
        if not latency.samples:
            return "—"
        return f"{_duration_text(latency.p50)} / {_duration_text(latency.p95)}"

    @admin.display(description="notices")
    def open_notices(self, feed: Feed) -> SafeString | str:
        count = self._health(feed).open_notices
        if not count:
            return "—"
        return format_html('<a href="{}">{} open</a>', _notices_url(feed), count)

    @admin.display(description="Health")
    def health(self, feed: Feed) -> SafeString | str:
        if feed.pk is None:
            return "Save the feed first."
        health = self._health(feed)
        circuit = health.circuit
        rows = [
            ("Last success", self.last_success(feed)),
            ("Failed attempts since", self.failure_streak(feed)),
            (
                "Circuit",
                "—"
                if circuit is None
                else format_html(
                    "{} ({} of {} attempts failed in the window{})",
                    self.circuit(feed),
                    circuit.failures,
                    circuit.requests,
                    f"; open until {circuit.open_until:%Y-%m-%d %H:%M:%S} UTC"
                    if circuit.open_until
                    else "",
                ),
            ),
            ("Backlog", self.backlog(feed)),
            (
                f"Latency p50 / p95 (last {settings.METRICS_LATENCY_WINDOW_HOURS} h)",
                f"{self.latency(feed)} over {health.latency.samples} batches",
            ),
            ("Open notices", _notices_html(feed)),
            (
                "Batches",
                format_html(
                    '<a href="{}">all batches</a> · <a href="{}">dead batches</a>',
                    _batches_url(feed),
                    _batches_url(feed, dead="yes"),
                ),
            ),
        ]
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    @admin.display(description="Newest batches (open one for its attempts)")
    def recent_batches(self, feed: Feed) -> SafeString | str:
        if feed.pk is None:
            return "—"
        rows = [
            (
                reverse("admin:delivery_batch_change", args=[batch.pk]),
                batch.sequence,
                batch.get_kind_display(),
                f"{batch.window_start:%Y-%m-%d %H:%M:%S}",
                batch.get_status_display(),
                batch.attempt_count,
                batch.delivered_count,
                batch.last_error[:120],
            )
            for batch in feed_recent_batches(feed=feed)
        ]
        if not rows:
            return "No batches yet."
        return format_html(
            "<table><tr><th>#</th><th>kind</th><th>window start (UTC)</th><th>status</th>"
            "<th>attempts</th><th>rows</th><th>last error</th></tr>{}</table>",
            format_html_join(
                "",
                '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
                "<td>{}</td><td>{}</td><td>{}</td></tr>",
                rows,
            ),
        )

    @admin.action(
        description="Send a test delivery (one synthetic record, signed and retried as usual)",
        permissions=["change"],
    )
    def send_test_delivery(self, request: HttpRequest, queryset: QuerySet[Feed]) -> None:
        for feed in queryset.select_related("partner"):
            try:
                batch = feed_test_delivery(feed=feed)
            except TestDeliveryRefused as exc:
                self.message_user(
                    request, f"{feed}: no test delivery: {exc.detail}.", messages.WARNING
                )
                continue
            url = reverse("admin:delivery_batch_change", args=[batch.pk])
            self.message_user(
                request,
                format_html(
                    '{}: test batch <a href="{}">#{}</a> queued for sending.',
                    feed,
                    url,
                    batch.sequence,
                ),
                messages.SUCCESS,
            )

    @admin.action(
        description="Acknowledge the open notices of the selected feeds", permissions=["change"]
    )
    def acknowledge_notices(self, request: HttpRequest, queryset: QuerySet[Feed]) -> None:
        done = notices_acknowledge(notices=FeedNotice.objects.filter(feed__in=queryset))
        self.message_user(request, f"{done} notices acknowledged.", messages.SUCCESS)


# Circuit breaker states as the Feed admin colours them.
CIRCUIT_COLOURS = {"closed": "#198754", "half_open": "#fd7e14", "open": "#dc3545"}
# Open notices listed on a feed's page; the rest are behind the link.
NOTICES_SHOWN = 5


def _duration_text(duration: timedelta | None) -> str:
    """A duration the way people say it: 45 s, 12 min, 3.5 h, 2.0 d."""
    if duration is None:
        return "—"
    seconds = duration.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _batches_url(feed: Feed, **filters: str) -> str:
    query = urlencode({"feed__id__exact": feed.pk, **filters})
    return f"{reverse('admin:delivery_batch_changelist')}?{query}"


def _notices_url(feed: Feed) -> str:
    query = urlencode({"feed__id__exact": feed.pk, "acknowledged_at__isempty": 1})
    return f"{reverse('admin:delivery_feednotice_changelist')}?{query}"


def _notices_html(feed: Feed) -> SafeString | str:
    notices = FeedNotice.objects.filter(feed=feed, acknowledged_at__isnull=True)[:NOTICES_SHOWN]
    rows = [
        (f"{n.created_at:%Y-%m-%d %H:%M}", n.get_level_display(), n.code, n.message)
        for n in notices
    ]
    if not rows:
        return "none"
    return format_html(
        '<ul style="margin:0;padding-left:1em">{}</ul><a href="{}">all open notices</a> '
        "(acknowledge them there, or with this list's action)",
        format_html_join("", "<li>{} {} <b>{}</b>: {}</li>", rows),
        _notices_url(feed),
    )


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


class SigningKeyAddForm(forms.ModelForm):
    """A new key for a partner: the scheme, and how long its current keys of that scheme overlap."""

    overlap_hours = forms.IntegerField(
        min_value=0,
        required=False,
        help_text="How long the partner's current keys of this scheme keep signing; "
        "empty = the SIGNING_KEY_OVERLAP_HOURS setting; 0 = stop them now.",
    )

    class Meta:
        model = SigningSecret
        fields = ["partner", "algorithm"]


@admin.register(SigningSecret)
class SigningSecretAdmin(SigningKeyStateMixin, admin.ModelAdmin):
    """Signing keys: adding one rotates the partner's keys of its scheme; never edited."""

    list_display = [
        "key_id",
        "partner",
        "algorithm",
        "state",
        "activates_at",
        "retires_at",
        "revoked_at",
        "created_at",
    ]
    list_filter = ["algorithm", "partner", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["partner"]
    search_fields = ["key_id", "partner__slug"]
    raw_id_fields = ["partner"]
    readonly_fields = [
        "partner",
        "key_id",
        "algorithm",
        "state",
        "public_key",
        "created_at",
        "activates_at",
        "retires_at",
        "revoked_at",
    ]
    actions = ["retire_after_overlap", "revoke_now"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = SigningKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("partner", "algorithm", "overlap_hours")
        return tuple(self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Key material and dates change only through rotation, retirement and revocation.
        return [] if obj is None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: SigningSecret, form, change: bool) -> None:
        if change:
            return
        hours = form.cleaned_data.get("overlap_hours")
        issued = signing_key_rotate(
            partner=obj.partner,
            algorithm=obj.algorithm,
            overlap=signing_key_overlap_default() if hours is None else timedelta(hours=hours),
        )
        obj.pk, obj.key_id = issued.key.pk, issued.key.key_id
        _show_signing_key(request, issued)

    @admin.action(description="Retire after the overlap (SIGNING_KEY_OVERLAP_HOURS from now)")
    def retire_after_overlap(self, request: HttpRequest, queryset: QuerySet[SigningSecret]) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            signing_key_retire(key=key)

    @admin.action(description="Revoke now (a leaked key: stops signing at once)")
    def revoke_now(self, request: HttpRequest, queryset: QuerySet[SigningSecret]) -> None:
        for key in queryset:
            signing_key_revoke(key=key)
