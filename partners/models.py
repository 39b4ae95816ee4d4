"""Who gets what: measurement partners, their feeds, credentials and rules.

Models hold data only; creating keys and secrets goes through
``partners.services`` so that plaintext never reaches the database.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime

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
    gvl_snapshot = models.ForeignKey(
        "GlobalVendorList",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Vendor list used for TCF checks; empty = the newest uploaded one.",
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

    # Not a field. The partner's unrevoked signing keys, newest first, when
    # whoever loaded the partner read them in the same statement (a push send:
    # gateway.delivery.statements.batch_for_send); the default signer then
    # uses them instead of reading them again. None: not loaded.
    unrevoked_signing_keys: list[SigningSecret] | None = None

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class UserAgentLevel(models.TextChoices):
    REMOVE = "remove", "Removed"
    FAMILY = "family", "Browser/app family and OS only"
    MAJOR = "major", "Family and major versions"
    FULL = "full", "Full string"


class FeedShape(models.TextChoices):
    EVENTS = "events", "Event rows"
    AGGREGATE = "aggregate", "Aggregate counts only"


class Feed(models.Model):
    """How a partner receives exposures: pushed to its endpoint, or pulled by it."""

    class Mode(models.TextChoices):
        PUSH = "push", "Push (HTTPS POST per window)"
        PULL = "pull", "Pull (partner downloads)"
        FILE = "file", "File drop (S3 or SFTP, one file per window)"
        STREAM = "stream", "Streaming (HTTPS POST of micro-batches as exposures arrive)"

    # Modes whose batches the gateway delivers itself (the partner pulls the others).
    PUSHED_MODES = (Mode.PUSH, Mode.STREAM, Mode.FILE)

    class Format(models.TextChoices):
        NDJSON = "ndjson", "NDJSON (gzip)"
        PARQUET = "parquet", "Parquet (file drops only)"

    class Encryption(models.TextChoices):
        NONE = "none", "None"
        X25519 = "ecdh-es+x25519", "JWE ECDH-ES (X25519) + A256GCM"
        RSA_OAEP_256 = "rsa-oaep-256", "JWE RSA-OAEP-256 + A256GCM"

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
    # --- minimisation (applied after consent, before the allowlist) ---------
    ipv4_prefix_bits = models.PositiveSmallIntegerField(
        default=24, validators=[MaxValueValidator(32)], help_text="IPv4 bits kept; 24 = /24."
    )
    ipv6_prefix_bits = models.PositiveSmallIntegerField(
        default=56, validators=[MaxValueValidator(128)], help_text="IPv6 bits kept; 56 = /56."
    )
    geo_decimals = models.PositiveSmallIntegerField(
        default=2,
        validators=[MaxValueValidator(6)],
        help_text="Decimals kept of lat/lon when precise geo is allowed (2 ≈ 1 km).",
    )
    user_agent_level = models.CharField(
        max_length=16,
        choices=UserAgentLevel.choices,
        default=UserAgentLevel.FAMILY,
        help_text="How much of the user agent a partner receives.",
    )
    # --- shape: event rows or aggregate counts --------------------------------
    shape = models.CharField(max_length=16, choices=FeedShape.choices, default=FeedShape.EVENTS)
    aggregate_dimensions = models.JSONField(
        default=list,
        blank=True,
        help_text="Aggregate feeds: dotted fields to group by, e.g. "
        '["campaign_id", "event_type", "geo.country"].',
    )
    aggregate_min_users = models.PositiveIntegerField(
        default=50,
        help_text="Aggregate feeds: cells with fewer distinct users are suppressed.",
    )
    max_batch_events = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Event feeds: at most this many events per batch; a window with more is "
        "delivered in parts, each a batch of its own (id, sequence, signature). For partners "
        "whose endpoints limit request sizes. Empty = no limit.",
    )
    max_batch_bytes = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1024)],
        help_text="NDJSON event feeds: at most this many bytes of NDJSON (before gzip) per "
        "batch, in parts beyond, as for max batch events. Empty = no limit.",
    )
    # --- retries and health ---------------------------------------------------
    retry_schedule = models.JSONField(
        default=list,
        blank=True,
        help_text="Seconds to wait before each attempt after the first, e.g. "
        "[5, 300, 1800]; empty = the documented default schedule.",
    )
    retry_jitter_pct = models.PositiveSmallIntegerField(
        default=20,
        validators=[MaxValueValidator(100)],
        help_text="Each wait is randomised by up to this many percent either way.",
    )
    auto_disable_after_hours = models.PositiveIntegerField(
        default=120,
        help_text="Disable the feed after this long of continuous failure; 0 = never.",
    )
    disabled_reason = models.CharField(
        max_length=300, blank=True, help_text="Why the gateway disabled the feed, if it did."
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    # --- isolation --------------------------------------------------------------
    max_concurrency = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(64)],
        help_text="Deliveries of this feed in flight at once, across all workers.",
    )
    max_requests_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests (or uploads) per second; empty = no limit."
    )
    max_events_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="Events delivered per second; empty = no limit."
    )
    # --- streaming feeds ----------------------------------------------------------
    stream_max_events = models.PositiveIntegerField(
        default=500,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Streaming: a micro-batch is sent once this many exposures wait.",
    )
    stream_max_delay_ms = models.PositiveIntegerField(
        default=250,
        validators=[MinValueValidator(10), MaxValueValidator(60_000)],
        help_text="Streaming: no exposure waits longer than this before it is sent.",
    )
    # --- file drops ---------------------------------------------------------------
    file_path_prefix = models.CharField(
        max_length=200, blank=True, help_text="File drops: folder under which files are written."
    )
    file_deadline_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="File drops: a window's file must be uploaded this long after it ends.",
    )
    # --- payload encryption ---------------------------------------------------------
    encryption = models.CharField(
        max_length=20, choices=Encryption.choices, default=Encryption.NONE
    )
    encryption_public_key = models.TextField(
        blank=True, help_text="The partner's public key (PEM) that bodies are encrypted to."
    )
    encryption_key_id = models.CharField(
        max_length=100, blank=True, help_text="Sent as the JWE 'kid', so the partner picks its key."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["partner__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "name"], name="feed_unique_name"),
            models.CheckConstraint(
                condition=~Q(mode__in=["push", "stream"]) | ~Q(endpoint_url=""),
                name="feed_push_needs_endpoint",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner.slug}/{self.name}"

    @property
    def pushes(self) -> bool:
        """Whether the gateway delivers this feed itself (HTTP or file), not the partner pulls."""
        return self.mode in self.PUSHED_MODES

    def clean(self) -> None:
        from partners.endpoints import validate_push_endpoint

        if self.mode in (self.Mode.PUSH, self.Mode.STREAM):
            if not self.endpoint_url:
                raise ValidationError({"endpoint_url": "A push feed needs an endpoint URL."})
            validate_push_endpoint(self.endpoint_url)
        if self.encryption != self.Encryption.NONE:
            from gateway.delivery.encryption import encryption_key_problems

            problems = encryption_key_problems(self.encryption, self.encryption_public_key)
            if problems:
                raise ValidationError({"encryption_public_key": problems})
        if self.format == self.Format.PARQUET and self.mode != self.Mode.FILE:
            raise ValidationError({"format": "Parquet is only for file-drop feeds."})
        if (
            not isinstance(self.retry_schedule, list)
            or not all(
                isinstance(delay, int | float)
                and not isinstance(delay, bool)
                and 0 <= delay <= 604800
                for delay in self.retry_schedule
            )
            or len(self.retry_schedule) > 30
        ):
            raise ValidationError(
                {"retry_schedule": "Must be a list of at most 30 waits in seconds (0 to 7 days)."}
            )
        if not isinstance(self.field_allowlist, list) or not all(
            isinstance(item, str) and item for item in self.field_allowlist
        ):
            raise ValidationError({"field_allowlist": "Must be a list of dotted field paths."})
        for cap in ("max_batch_events", "max_batch_bytes"):
            if self.shape == FeedShape.AGGREGATE and getattr(self, cap) is not None:
                raise ValidationError(
                    {cap: "Only event feeds are split into parts: leave it empty."}
                )
        if self.format == self.Format.PARQUET and self.max_batch_bytes is not None:
            raise ValidationError(
                {"max_batch_bytes": "Parquet files are cut by events: use max batch events."}
            )
        if self.shape == FeedShape.AGGREGATE:
            from gateway.privacy.aggregate import aggregate_dimensions_problems

            problems = aggregate_dimensions_problems(
                self.aggregate_dimensions, self.field_allowlist
            )
            if problems:
                raise ValidationError({"aggregate_dimensions": problems})


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
    activity_purposes = models.JSONField(
        default=dict,
        blank=True,
        help_text="TCF legal bases each activity needs; empty = the documented defaults.",
    )
    activity_defaults = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per activity "allow" or "deny" when no activity rule matches; '
        "empty = allow (consent checks still apply).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Consent rule for {self.partner}"

    def clean(self) -> None:
        from gateway.privacy.activities import activity_defaults_parse, activity_purposes_parse

        errors = {}
        purposes = self.required_tcf_purposes
        if not isinstance(purposes, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 24 for p in purposes
        ):
            errors["required_tcf_purposes"] = "Must be a list of TCF purpose ids between 1 and 24."
        for name, parse in (
            ("activity_purposes", activity_purposes_parse),
            ("activity_defaults", activity_defaults_parse),
        ):
            try:
                parse(getattr(self, name))
            except ValueError as exc:
                errors[name] = f"Invalid: {exc}."
        if errors:
            raise ValidationError(errors)


class SigningSecret(models.Model):
    """A key that signs a partner's webhooks: v1 HMAC (``whsec_``) or v1a Ed25519 (``whsk_``).

    The secret part is Fernet-encrypted at rest; a v1a key also keeps its
    ``whpk_`` public key in clear, since that is published (JWKS) anyway.
    Created and rotated only through ``partners.services``.
    """

    class Algorithm(models.TextChoices):
        HMAC_SHA256 = "v1", "v1: HMAC-SHA256 (shared whsec_ secret)"
        ED25519 = "v1a", "v1a: Ed25519 (partner verifies with our whpk_ public key)"

    class State(models.TextChoices):
        PENDING = "pending", "Pending (not signing yet)"
        ACTIVE = "active", "Active"
        OVERLAP = "overlap", "Overlap (still signing until it retires)"
        RETIRED = "retired", "Retired"
        REVOKED = "revoked", "Revoked"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="signing_secrets")
    key_id = models.CharField(
        max_length=32, unique=True, editable=False, help_text="Public id; the JWKS 'kid'."
    )
    algorithm = models.CharField(
        max_length=8, choices=Algorithm.choices, default=Algorithm.HMAC_SHA256
    )
    secret_encrypted = models.TextField(editable=False)
    public_key = models.CharField(
        max_length=64, blank=True, editable=False, help_text="v1a only: the whpk_ public key."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A key signs from activates_at (empty: since it was created) until
    # retires_at (empty: until rotated). After a rotation the old key keeps
    # signing until retires_at, the overlap, so partners can switch keys
    # without a single failed verification. Revocation stops it at once.
    activates_at = models.DateTimeField(null=True, blank=True)
    retires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "signing key"
        constraints = [
            models.CheckConstraint(
                condition=(Q(algorithm="v1") & Q(public_key=""))
                | (Q(algorithm="v1a") & ~Q(public_key="")),
                name="signing_key_public_key_iff_v1a",
            ),
        ]

    def __str__(self) -> str:
        return f"Signing key {self.key_id} of {self.partner} ({self.algorithm})"

    def signs_at(self, at: datetime) -> bool:
        """Whether the key signs a webhook timestamped ``at``.

        The same rule as a query filter: ``partners.services._signing_keys_in_use_q``.
        """
        return (
            self.revoked_at is None
            and (self.activates_at is None or self.activates_at <= at)
            and (self.retires_at is None or self.retires_at > at)
        )


class PseudonymKey(models.Model):
    """Per-partner HMAC key for user and device pseudonyms, encrypted at rest."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="pseudonym_keys")
    key_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # A key is current from activates_at; after a rotation the previous key
    # keeps producing a second pseudonym until retires_at (the overlap), so a
    # partner can link the old and new pseudonyms of the same person.
    activates_at = models.DateTimeField(null=True, blank=True)
    retires_at = models.DateTimeField(null=True, blank=True)
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


class Activity(models.TextChoices):
    """What a partner may be allowed to do with an exposure (after Prebid's activity controls)."""

    TRANSMIT_EVENT = "transmit_event", "Receive the event at all"
    TRANSMIT_USER_IDS = "transmit_user_ids", "Receive user and household ids (pseudonymised)"
    TRANSMIT_DEVICE_IDS = "transmit_device_ids", "Receive device ids (pseudonymised)"
    TRANSMIT_PRECISE_GEO = "transmit_precise_geo", "Receive lat/lon, city and postal code"
    TRANSMIT_IP = "transmit_ip", "Receive the (truncated) IP address"
    TRANSMIT_USER_AGENT = "transmit_user_agent", "Receive the (reduced) user agent"


class ActivityRule(models.Model):
    """One ordered rule of a partner's activity controls; the first matching rule decides.

    Every condition left empty matches anything; all given conditions must hold.
    """

    class Effect(models.TextChoices):
        ALLOW = "allow", "Allow"
        DENY = "deny", "Deny"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="activity_rules")
    activity = models.CharField(max_length=32, choices=Activity.choices)
    position = models.PositiveSmallIntegerField(help_text="Rules are evaluated in this order.")
    effect = models.CharField(max_length=8, choices=Effect.choices)
    regimes = models.JSONField(
        default=list, blank=True, help_text='e.g. ["tcf"], ["us_national", "us_state"], ["none"]'
    )
    gpp_sections = models.JSONField(default=list, blank=True, help_text='e.g. ["usca", "usnat"]')
    countries = models.JSONField(default=list, blank=True, help_text='ISO 3166-1, e.g. ["US"]')
    regions = models.JSONField(default=list, blank=True, help_text='ISO 3166-2, e.g. ["US-CA"]')
    gpc = models.BooleanField(null=True, blank=True, help_text="Match only this GPC value.")
    coppa = models.BooleanField(null=True, blank=True, help_text="Match only this COPPA value.")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["partner", "activity", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "activity", "position"], name="activity_rule_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner.slug} {self.activity} #{self.position}: {self.effect}"

    def clean(self) -> None:
        from gateway.privacy.activities import activity_rule_problems
        from gateway.privacy.regime import GPP_SECTION_NAMES

        problems = activity_rule_problems(
            activity=self.activity,
            effect=self.effect,
            regimes=self.regimes,
            gpp_sections=self.gpp_sections,
            countries=self.countries,
            regions=self.regions,
            known_sections=GPP_SECTION_NAMES.values(),
        )
        if problems:
            raise ValidationError(problems)


class GlobalVendorList(models.Model):
    """An uploaded snapshot of the IAB Global Vendor List, used for TCF declarations."""

    version = models.PositiveIntegerField(unique=True, help_text="vendorListVersion")
    tcf_policy_version = models.PositiveSmallIntegerField()
    last_updated = models.DateTimeField(null=True, blank=True)
    document = models.JSONField(help_text="The vendor-list JSON as uploaded.")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        verbose_name = "Global Vendor List snapshot"

    def __str__(self) -> str:
        return f"GVL v{self.version} (policy {self.tcf_policy_version})"

    def clean(self) -> None:
        """The document must be a valid vendor list whose versions match the row's."""
        from gateway.privacy.gvl import GvlError, parse_gvl

        try:
            gvl = parse_gvl(self.document)
        except GvlError as exc:
            raise ValidationError({"document": str(exc)}) from exc
        if self.version is not None and self.version != gvl.vendor_list_version:
            raise ValidationError(
                {"version": f"The document is vendorListVersion {gvl.vendor_list_version}."}
            )
        if (
            self.tcf_policy_version is not None
            and self.tcf_policy_version != gvl.tcf_policy_version
        ):
            message = f"The document is tcfPolicyVersion {gvl.tcf_policy_version}."
            raise ValidationError({"tcf_policy_version": message})


class PrivacySettings(models.Model):
    """Gateway-wide privacy configuration; a single row (pk=1) edited in admin."""

    class DefaultRegime(models.TextChoices):
        NONE = "none", "No regime: consent checks pass, activity rules still apply"
        US_NATIONAL = "us_national", "Treat as US national"
        DENY = "deny", "Deny (fail closed)"

    gpc_states = models.JSONField(
        default=list,
        blank=True,
        help_text="US states (ISO 3166-2 subdivision codes, e.g. CA) whose law requires "
        "honouring Global Privacy Control.",
    )
    default_regime = models.CharField(
        max_length=16, choices=DefaultRegime.choices, default=DefaultRegime.NONE
    )
    pseudonym_key_overlap_hours = models.PositiveIntegerField(
        default=720, help_text="How long a rotated pseudonym key keeps producing pseudonyms."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "privacy settings"

    def __str__(self) -> str:
        return "Privacy settings"
