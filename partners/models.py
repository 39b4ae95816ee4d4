"""Who gets what: measurement partners, their feeds, credentials and rules.

Models hold data only; creating keys and secrets goes through
``partners.services`` so that plaintext never reaches the database.
"""

from __future__ import annotations

import zoneinfo
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name")


class Partner(models.Model):
    """A third-party measurement company (Nielsen, IAS, ...)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused (no deliveries)"
        OFFBOARDED = "offboarded", "Offboarded"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    gvl_vendor_id = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="IAB Global Vendor List id; needed to check TCF vendor consent.",
    )
    reporting_time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone]
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    reconciliation_tolerance_pct = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=10,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Discrepancies above this percentage are flagged.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


# Fields a feed may carry, by dotted path into the exposure record. The privacy
# filter removes everything else, so a new ingest field is never forwarded by
# accident.
DEFAULT_FEED_FIELDS = [
    "event_id",
    "occurred_at",
    "event_type",
    "media_type",
    "content_type",
    "advertiser_id",
    "campaign_id",
    "line_item_id",
    "creative_id",
    "placement_id",
    "device.type",
    "device.os",
    "geo.country",
    "geo.region",
]


class Feed(models.Model):
    """How a partner receives exposures: pushed to its endpoint, or pulled by it."""

    class Mode(models.TextChoices):
        PUSH = "push", "Push (HTTPS POST)"
        PULL = "pull", "Pull (partner downloads)"

    class Format(models.TextChoices):
        NDJSON = "ndjson", "NDJSON"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="feeds")
    name = models.SlugField(help_text="Short name, unique per partner.")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    endpoint_url = models.URLField(blank=True, max_length=500)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.NDJSON)
    gzip = models.BooleanField(default=True)
    batch_window_seconds = models.PositiveIntegerField(
        default=3600,
        validators=[MinValueValidator(5), MaxValueValidator(86400)],
        help_text="Exposures are grouped into windows of this length by arrival time.",
    )
    grace_seconds = models.PositiveIntegerField(
        default=30,
        validators=[MaxValueValidator(3600)],
        help_text="How long after a window ends before it is built, for in-flight ingests.",
    )
    field_allowlist = models.JSONField(
        default=list,
        blank=True,
        help_text="Dotted field paths this feed may carry, e.g. geo.country. "
        "Pseudonymised ids (user_id, device.ifa, household_id) must be listed to be sent.",
    )
    deliver_from = models.DateTimeField(
        help_text="First window start; windows before this are never built."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["partner__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "name"], name="feed_unique_name"),
            models.CheckConstraint(
                condition=~Q(mode="push") | ~Q(endpoint_url=""),
                name="feed_push_needs_endpoint",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner.slug}/{self.name}"

    def clean(self) -> None:
        from partners.endpoints import validate_push_endpoint

        if self.mode == self.Mode.PUSH:
            if not self.endpoint_url:
                raise ValidationError({"endpoint_url": "A push feed needs an endpoint URL."})
            validate_push_endpoint(self.endpoint_url)
        if not isinstance(self.field_allowlist, list) or not all(
            isinstance(item, str) and item for item in self.field_allowlist
        ):
            raise ValidationError({"field_allowlist": "Must be a list of dotted field paths."})


class CampaignAssignment(models.Model):
    """A campaign a partner measures, for a range of days in its reporting time zone."""

    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="campaign_assignments"
    )
    campaign_id = models.CharField(max_length=64)
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True, help_text="Inclusive; empty = open-ended.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["partner__name", "campaign_id", "starts_on"]
        indexes = [models.Index(fields=["campaign_id"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="assignment_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        end = self.ends_on.isoformat() if self.ends_on else "open"
        return f"{self.campaign_id} ({self.starts_on.isoformat()} to {end})"

    def covers(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)


class ConsentRule(models.Model):
    """What consent a partner needs before it may receive an exposure."""

    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, related_name="consent_rule")
    required_tcf_purposes = models.JSONField(
        default=list,
        blank=True,
        help_text="TCF purpose ids that need consent where GDPR applies, e.g. [1, 7].",
    )
    require_vendor_consent = models.BooleanField(
        default=True, help_text="Also require the partner's GVL vendor consent bit under TCF."
    )
    honour_us_privacy_opt_out = models.BooleanField(default=True)
    honour_gpc = models.BooleanField(default=True)
    honour_coppa = models.BooleanField(default=True)
    honour_lmt = models.BooleanField(
        default=True, help_text="Remove the device advertising id when limit-ad-tracking is on."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Consent rule for {self.partner}"

    def clean(self) -> None:
        purposes = self.required_tcf_purposes
        if not isinstance(purposes, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 24 for p in purposes
        ):
            raise ValidationError(
                {"required_tcf_purposes": "Must be a list of TCF purpose ids between 1 and 24."}
            )


class SigningSecret(models.Model):
    """A Standard Webhooks ``whsec_`` secret, encrypted at rest."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="signing_secrets")
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"Signing secret of {self.partner} ({state}, {self.created_at:%Y-%m-%d})"


class PseudonymKey(models.Model):
    """Per-partner HMAC key for user and device pseudonyms, encrypted at rest."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="pseudonym_keys")
    key_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Pseudonym key of {self.partner} ({self.created_at:%Y-%m-%d})"


class ApiKey(models.Model):
    """A partner's credential for the partner API; only a hash is stored."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.partner.slug}: {self.name} ({self.prefix}…)"
