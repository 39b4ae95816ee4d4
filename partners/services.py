"""Write operations on partner configuration. Views, admin and commands call these."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from partners.models import (
    ApiKey,
    ConsentRule,
    GlobalVendorList,
    Partner,
    PseudonymKey,
    SigningSecret,
)
from partners.secrets import decrypt, encrypt, new_hmac_key, new_whsec, token_issue

API_KEY_KIND = "mgk"

# Default consent: store/access on a device (1) and measure ad performance (7).
DEFAULT_REQUIRED_TCF_PURPOSES = [1, 7]


@transaction.atomic
def partner_provision(*, partner: Partner) -> str:
    """Give a newly saved partner its consent rule, pseudonym key and signing secret.

    Returns the plaintext signing secret so the caller can show it once.
    Safe to call again: it only creates what is missing.
    """
    ConsentRule.objects.get_or_create(
        partner=partner, defaults={"required_tcf_purposes": DEFAULT_REQUIRED_TCF_PURPOSES}
    )
    if not partner.pseudonym_keys.filter(revoked_at__isnull=True).exists():
        PseudonymKey.objects.create(partner=partner, key_encrypted=encrypt(new_hmac_key()))
    if partner.signing_secrets.filter(revoked_at__isnull=True).exists():
        return ""
    return signing_secret_rotate(partner=partner)


@transaction.atomic
def partner_create(*, slug: str, name: str, **fields: Any) -> tuple[Partner, str]:
    partner = Partner(slug=slug, name=name, **fields)
    partner.full_clean()
    partner.save()
    return partner, partner_provision(partner=partner)


@transaction.atomic
def signing_secret_rotate(*, partner: Partner, now: datetime | None = None) -> str:
    """Create a new active signing secret and revoke the old ones; returns the plaintext."""
    now = now or timezone.now()
    partner.signing_secrets.filter(revoked_at__isnull=True).update(revoked_at=now)
    plaintext = new_whsec()
    SigningSecret.objects.create(partner=partner, secret_encrypted=encrypt(plaintext))
    return plaintext


def signing_secret_current(*, partner_id: int) -> str:
    secret = (
        SigningSecret.objects.filter(partner_id=partner_id, revoked_at__isnull=True)
        .order_by("-created_at")
        .first()
    )
    if secret is None:
        raise SigningSecret.DoesNotExist(f"partner {partner_id} has no active signing secret")
    return decrypt(secret.secret_encrypted)


def pseudonym_keys_in_use(*, partner_id: int, now: datetime | None = None) -> tuple[bytes, bytes]:
    """The current pseudonym key and, during a rotation's overlap, the previous one (else b"")."""
    now = now or timezone.now()
    keys = list(
        PseudonymKey.objects.filter(partner_id=partner_id, revoked_at__isnull=True)
        .filter(Q(activates_at__isnull=True) | Q(activates_at__lte=now))
        .filter(Q(retires_at__isnull=True) | Q(retires_at__gt=now))
        .order_by("-created_at")[:2]
    )
    if not keys:
        raise PseudonymKey.DoesNotExist(f"partner {partner_id} has no active pseudonym key")
    current = decrypt(keys[0].key_encrypted).encode()
    previous = decrypt(keys[1].key_encrypted).encode() if len(keys) > 1 else b""
    return current, previous


@transaction.atomic
def pseudonym_key_rotate(
    *, partner: Partner, overlap: timedelta, now: datetime | None = None
) -> PseudonymKey:
    """Start a new pseudonym key now; the current one keeps working for ``overlap``."""
    now = now or timezone.now()
    partner.pseudonym_keys.filter(revoked_at__isnull=True, retires_at__isnull=True).update(
        retires_at=now + overlap
    )
    return PseudonymKey.objects.create(
        partner=partner, key_encrypted=encrypt(new_hmac_key()), activates_at=now
    )


@transaction.atomic
def api_key_create(*, partner: Partner, name: str) -> tuple[ApiKey, str]:
    """Issue a partner API key; the plaintext is returned once and never stored."""
    issued = token_issue(API_KEY_KIND)
    api_key = ApiKey.objects.create(
        partner=partner, name=name, prefix=issued.prefix, key_hash=issued.digest
    )
    return api_key, issued.plaintext


def api_key_revoke(*, api_key: ApiKey) -> None:
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])


@transaction.atomic
def gvl_snapshot_store(*, document: dict[str, Any]) -> GlobalVendorList:
    """Store a vendor-list document as a snapshot, or return the one of the same version.

    The document is validated by the TCF parser; versions and dates are read from it.
    """
    from gateway.privacy.gvl import parse_gvl

    gvl = parse_gvl(document)
    snapshot, _created = GlobalVendorList.objects.get_or_create(
        version=gvl.vendor_list_version,
        defaults={
            "tcf_policy_version": gvl.tcf_policy_version,
            "last_updated": gvl.last_updated,
            "document": document,
        },
    )
    return snapshot
