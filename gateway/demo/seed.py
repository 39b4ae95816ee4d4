"""Demo configuration: an admin, the demo partners with feeds and credentials, an ingest token.

Idempotent: run it any number of times. Secrets are stored hashed or encrypted
and cannot be read back, so their plaintexts live in ``var/demo.json`` (mode
0600). Each run checks that file's secrets against the database and issues new
ones only for those that are missing or no longer valid.

A feed's ``deliver_from`` is set when the feed is created and never moved by a
later seed: moving it forward would silently drop exposures that are still
waiting for their window, and moving it back cannot bring back windows that
were already cut.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from gateway.delivery.windows import window_floor
from gateway.demo.catalog import (
    DEMO_PARTNERS,
    HISTORY_DAYS,
    LIVE_PLAY_STARTED_SECONDS_AGO,
    DemoPartner,
)
from gateway.demo.gvl import demo_gvl_document
from gateway.ingest.models import IngestToken
from gateway.ingest.services import (
    INGEST_TOKEN_KIND,
    ingest_token_create,
    ingest_tokens_revoke,
)
from partners.models import ApiKey, CampaignAssignment, Feed, Partner, SigningSecret
from partners.secrets import SecretDecryptionError, token_matches, token_prefix
from partners.services import (
    API_KEY_KIND,
    api_key_create,
    api_key_revoke,
    gvl_snapshot_store,
    partner_create,
    partner_provision,
    signing_secret_current,
    signing_secret_rotate,
)

ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@example.com"
DEMO_FILE_NAME = "demo.json"
DEMO_KEY_NAME = "demo simulator"
DEMO_TOKEN_NAME = "demo load generator"
DEFAULT_WEB_PORT = 8000
# Campaigns are assigned from this many days back, so all synthetic data is in
# scope (partners that deliver the history; the others measure from the seed's day).
ASSIGNMENT_LOOKBACK_DAYS = 30
# A feed without the history starts this long before the seed: live events are
# posted up to this long after they occurred, and the first ones must count.
LIVE_LAG = timedelta(seconds=LIVE_PLAY_STARTED_SECONDS_AGO[1])
# The history's first plays start up to a minute (the longest ad) before
# HISTORY_DAYS; a feed with the history starts a little earlier still.
HISTORY_MARGIN = timedelta(minutes=5)


@dataclass
class PartnerSecrets:
    """What a demo partner's simulator needs to run: its secrets and where it listens."""

    slug: str
    mode: str
    time_zone: str
    simulator_port: int
    report_bias: float
    signing_secret: str = ""
    api_key: str = ""
    report_interval_seconds: int = 30


@dataclass
class DemoSecrets:
    """The contents of var/demo.json."""

    admin_username: str = ADMIN_USERNAME
    admin_password: str = ""
    ingest_token: str = ""
    web_port: int = DEFAULT_WEB_PORT
    partners: dict[str, PartnerSecrets] = field(default_factory=dict)

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/admin/"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["admin_url"] = self.admin_url
        data["gateway_url"] = self.gateway_url
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DemoSecrets:
        partners = {
            slug: PartnerSecrets(**{k: v for k, v in item.items() if k in _PARTNER_FIELDS})
            for slug, item in (data.get("partners") or {}).items()
        }
        return cls(
            admin_username=str(data.get("admin_username") or ADMIN_USERNAME),
            admin_password=str(data.get("admin_password") or ""),
            ingest_token=str(data.get("ingest_token") or ""),
            web_port=int(data.get("web_port") or DEFAULT_WEB_PORT),
            partners=partners,
        )


_PARTNER_FIELDS = frozenset(PartnerSecrets.__dataclass_fields__)


# --- demo.json ------------------------------------------------------------------


def demo_file_path(var_dir: Path) -> Path:
    return Path(var_dir) / DEMO_FILE_NAME


def demo_secrets_read(path: Path) -> DemoSecrets | None:
    """The saved secrets, or None when the file is missing or unreadable (then all rotate)."""
    try:
        return DemoSecrets.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def demo_secrets_write(path: Path, demo: DemoSecrets) -> None:
    """Write atomically, readable by the owner only: the file holds live credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".demo-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(demo.as_json(), handle, indent=2)
            handle.write("\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


# --- the seed -------------------------------------------------------------------


def demo_seed(
    *,
    var_dir: Path,
    web_port: int = DEFAULT_WEB_PORT,
    simulator_ports: dict[str, int] | None = None,
    now: datetime | None = None,
) -> DemoSecrets:
    """Create or update the demo configuration and write var/demo.json; returns its contents.

    ``simulator_ports`` overrides the catalog's port per partner slug (the push
    feed's endpoint URL follows it).
    """
    now = now or timezone.now()
    path = demo_file_path(var_dir)
    previous = demo_secrets_read(path) or DemoSecrets()
    ports = {p.slug: p.simulator_port for p in DEMO_PARTNERS} | (simulator_ports or {})
    demo = _seed_database(previous=previous, web_port=web_port, ports=ports, now=now)
    demo_secrets_write(path, demo)
    return demo


@transaction.atomic
def _seed_database(
    *, previous: DemoSecrets, web_port: int, ports: dict[str, int], now: datetime
) -> DemoSecrets:
    demo = DemoSecrets(web_port=web_port)
    demo.admin_password = _admin_ensure(previous.admin_password)
    demo.ingest_token = _ingest_token_ensure(previous.ingest_token, now=now)
    gvl_snapshot_store(document=demo_gvl_document((p.gvl_vendor_id, p.name) for p in DEMO_PARTNERS))
    for spec in DEMO_PARTNERS:
        known = previous.partners.get(spec.slug)
        demo.partners[spec.slug] = _partner_ensure(
            spec, known=known, port=ports[spec.slug], now=now
        )
    return demo


def _admin_ensure(known_password: str) -> str:
    """The admin's password: the saved one if it still works, else a new one."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=ADMIN_USERNAME).first()
    if user is None:
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(ADMIN_USERNAME, ADMIN_EMAIL, password)
        return password
    if known_password and user.check_password(known_password) and _is_superuser(user):
        return known_password
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.is_staff = user.is_superuser = user.is_active = True
    user.save(update_fields=["password", "is_staff", "is_superuser", "is_active"])
    return password


def _is_superuser(user: AbstractBaseUser) -> bool:
    return bool(getattr(user, "is_superuser", False) and getattr(user, "is_active", False))


def _ingest_token_ensure(known: str, *, now: datetime) -> str:
    prefix = token_prefix(known, INGEST_TOKEN_KIND) if known else None
    active = IngestToken.objects.filter(revoked_at__isnull=True, name=DEMO_TOKEN_NAME)
    current = active.filter(prefix=prefix).first() if prefix else None
    if current is not None and token_matches(known, current.token_hash):
        return known
    # Nobody knows the old demo tokens' plaintexts any more: retire them.
    ingest_tokens_revoke(token_ids=list(active.values_list("pk", flat=True)), now=now)
    _token, plaintext = ingest_token_create(name=DEMO_TOKEN_NAME)
    return plaintext


def _partner_ensure(
    spec: DemoPartner, *, known: PartnerSecrets | None, port: int, now: datetime
) -> PartnerSecrets:
    partner, fresh_secret = _partner_upsert(spec)
    _feed_upsert(spec, partner=partner, port=port, now=now)
    _assignments_ensure(spec, partner=partner, now=now)
    return PartnerSecrets(
        slug=spec.slug,
        mode=spec.mode,
        time_zone=spec.reporting_time_zone,
        simulator_port=port,
        report_bias=spec.report_bias,
        report_interval_seconds=spec.report_interval_seconds,
        signing_secret=fresh_secret
        or _signing_secret_ensure(partner, known.signing_secret if known else ""),
        api_key=_api_key_ensure(partner, known.api_key if known else "", now=now),
    )


def _partner_upsert(spec: DemoPartner) -> tuple[Partner, str]:
    """The partner, created with its secret when new; returns the new plaintext or ""."""
    partner = Partner.objects.filter(slug=spec.slug).first()
    if partner is None:
        return partner_create(
            slug=spec.slug,
            name=spec.name,
            gvl_vendor_id=spec.gvl_vendor_id,
            reporting_time_zone=spec.reporting_time_zone,
        )
    partner.name = spec.name
    partner.gvl_vendor_id = spec.gvl_vendor_id
    partner.reporting_time_zone = spec.reporting_time_zone
    partner.status = Partner.Status.ACTIVE
    partner.full_clean()
    partner.save(update_fields=["name", "gvl_vendor_id", "reporting_time_zone", "status"])
    # Whatever was deleted by hand since the last seed (consent rule, keys) comes back.
    return partner, partner_provision(partner=partner)


def _signing_secret_ensure(partner: Partner, known: str) -> str:
    try:
        if known and signing_secret_current(partner_id=partner.pk) == known:
            return known
    # No active secret, or one encrypted under keys we no longer have: issue a new one.
    except (SigningSecret.DoesNotExist, SecretDecryptionError):
        pass
    return signing_secret_rotate(partner=partner)


def _api_key_ensure(partner: Partner, known: str, *, now: datetime) -> str:
    prefix = token_prefix(known, API_KEY_KIND) if known else None
    active = ApiKey.objects.filter(partner=partner, name=DEMO_KEY_NAME, revoked_at__isnull=True)
    current = active.filter(prefix=prefix).first() if prefix else None
    if current is not None and token_matches(known, current.key_hash):
        return known
    for stale in active:
        api_key_revoke(api_key=stale)
    _key, plaintext = api_key_create(partner=partner, name=DEMO_KEY_NAME)
    return plaintext


def push_endpoint_url(spec: DemoPartner, *, port: int) -> str:
    return f"http://127.0.0.1:{port}{spec.endpoint_path}"


def feed_deliver_from(spec: DemoPartner, *, now: datetime) -> datetime:
    """Where a new demo feed starts: with the synthetic history, or just before the seed.

    Exposures that occurred before it are never delivered to the feed. The
    history covers the HISTORY_DAYS before the initial load, which follows the
    seed, so a feed that starts with the window holding that instant (less a
    margin) receives all of it: 72 or 73 hourly windows.
    """
    if spec.delivers_history:
        first = now - timedelta(days=HISTORY_DAYS) - HISTORY_MARGIN
        return window_floor(first, length_seconds=spec.batch_window_seconds)
    return now - LIVE_LAG


def _feed_upsert(spec: DemoPartner, *, partner: Partner, port: int, now: datetime) -> Feed:
    feed = Feed.objects.filter(partner=partner, name=spec.feed_name).first()
    created = feed is None
    if feed is None:
        # Set once: see the module docstring.
        feed = Feed(
            partner=partner, name=spec.feed_name, deliver_from=feed_deliver_from(spec, now=now)
        )
    feed.mode = spec.mode
    feed.endpoint_url = (
        push_endpoint_url(spec, port=port)
        if spec.mode in (Feed.Mode.PUSH, Feed.Mode.STREAM)
        else ""
    )
    feed.gzip = spec.gzip
    feed.batch_window_seconds = spec.batch_window_seconds
    feed.grace_seconds = spec.grace_seconds
    feed.stream_max_delay_ms = spec.stream_max_delay_ms
    feed.stream_max_events = spec.stream_max_events
    feed.max_batch_events = spec.max_batch_events
    feed.field_allowlist = list(spec.field_allowlist)
    feed.enabled = True
    # Validates the endpoint too: http://127.0.0.1 needs ALLOW_PRIVATE_ENDPOINTS=true.
    feed.full_clean()
    if created:
        feed.save()
    else:
        feed.save(update_fields=_FEED_FIELDS)
    return feed


_FEED_FIELDS = [
    "mode",
    "endpoint_url",
    "gzip",
    "batch_window_seconds",
    "grace_seconds",
    "stream_max_delay_ms",
    "stream_max_events",
    "max_batch_events",
    "field_allowlist",
    "enabled",
    "updated_at",
]


def _assignments_ensure(spec: DemoPartner, *, partner: Partner, now: datetime) -> None:
    today = now.astimezone(ZoneInfo(spec.reporting_time_zone)).date()
    # A partner without the history measures from the seed's day: earlier days
    # would show in reconciliation as days it never received or reported.
    lookback = ASSIGNMENT_LOOKBACK_DAYS if spec.delivers_history else 0
    for campaign_id in spec.campaign_ids:
        CampaignAssignment.objects.get_or_create(
            partner=partner,
            campaign_id=campaign_id,
            defaults={"starts_on": today - timedelta(days=lookback)},
        )
