"""Write operations on partner configuration. Views, admin and commands call these."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from gateway.delivery import statements
from gateway.delivery.signers import LocalSigner, NoSigningKey, SigningKeyMaterial
from gateway.delivery.signing import ed25519_jwk
from partners.models import (
    ApiKey,
    ConsentRule,
    GlobalVendorList,
    Partner,
    PseudonymKey,
    SigningSecret,
)
from partners.secrets import (
    SecretDecryptionError,
    decrypt,
    encrypt,
    new_ed25519_key,
    new_hmac_key,
    new_signing_key_id,
    new_whsec,
    token_issue,
)

logger = logging.getLogger(__name__)

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
    if partner.signing_secrets.filter(_signing_keys_live_q(timezone.now())).exists():
        return ""
    return signing_secret_rotate(partner=partner)


@transaction.atomic
def partner_create(*, slug: str, name: str, **fields: Any) -> tuple[Partner, str]:
    partner = Partner(slug=slug, name=name, **fields)
    partner.full_clean()
    partner.save()
    return partner, partner_provision(partner=partner)


# --- signing keys -------------------------------------------------------------
# A partner's keys sign every webhook we push and every batch it downloads.
# Rotating starts a new key and lets the old ones of the same scheme keep
# signing for an overlap, so the ``webhook-signature`` header carries both
# and a partner can switch keys without one failed verification.


@dataclass(frozen=True)
class SigningKeyIssued:
    """A new signing key and what the partner needs to verify its signatures.

    ``secret`` is the ``whsec_`` plaintext of a v1 key (show it once, it is
    stored only encrypted) and empty for v1a, whose ``whsk_`` private key never
    leaves the gateway; ``public_key`` is the ``whpk_`` of a v1a key.
    """

    key: SigningSecret
    secret: str
    public_key: str


def signing_key_overlap_default() -> timedelta:
    return timedelta(hours=settings.SIGNING_KEY_OVERLAP_HOURS)


def _signing_keys_in_use_q(at: datetime) -> Q:
    """Keys that sign a webhook timestamped ``at`` (``SigningSecret.signs_at`` for one key)."""
    return (
        Q(revoked_at__isnull=True)
        & (Q(activates_at__isnull=True) | Q(activates_at__lte=at))
        & (Q(retires_at__isnull=True) | Q(retires_at__gt=at))
    )


def _signing_keys_live_q(at: datetime) -> Q:
    """Keys that sign now or will: neither revoked nor retired (pending ones included)."""
    return Q(revoked_at__isnull=True) & (Q(retires_at__isnull=True) | Q(retires_at__gt=at))


def _whole_second(moment: datetime) -> datetime:
    # Signatures carry whole seconds; switching keys on a second boundary means
    # the webhook-timestamp alone says which keys signed a request.
    return moment.replace(microsecond=0)


@transaction.atomic
def signing_key_rotate(
    *,
    partner: Partner,
    algorithm: str = SigningSecret.Algorithm.HMAC_SHA256,
    overlap: timedelta | None = None,
    now: datetime | None = None,
) -> SigningKeyIssued:
    """Start a new ``algorithm`` key now; the partner's keys of that scheme retire after overlap.

    Keys of the other scheme are left alone: a partner may verify both. The
    overlap defaults to ``SIGNING_KEY_OVERLAP_HOURS``; zero retires the old
    keys at once (use ``signing_key_revoke`` for a leaked key).
    """
    if algorithm not in SigningSecret.Algorithm.values:
        raise ValueError(f"unknown signing algorithm {algorithm!r}")
    overlap = signing_key_overlap_default() if overlap is None else overlap
    if overlap < timedelta(0):
        raise ValueError("a rotation overlap cannot be negative")
    now = _whole_second(now or timezone.now())
    # Serialise rotations of one partner, so two racing admins cannot both
    # leave their old keys unretired.
    Partner.objects.select_for_update().get(pk=partner.pk)
    retires_at = now + overlap
    partner.signing_secrets.filter(algorithm=algorithm, revoked_at__isnull=True).filter(
        Q(retires_at__isnull=True) | Q(retires_at__gt=retires_at)
    ).update(retires_at=retires_at)
    return _signing_key_create(partner=partner, algorithm=algorithm, activates_at=now)


def _signing_key_create(
    *, partner: Partner, algorithm: str, activates_at: datetime
) -> SigningKeyIssued:
    if algorithm == SigningSecret.Algorithm.ED25519:
        secret, public_key = new_ed25519_key()
    else:
        secret, public_key = new_whsec(), ""
    key = SigningSecret.objects.create(
        partner=partner,
        key_id=new_signing_key_id(),
        algorithm=algorithm,
        secret_encrypted=encrypt(secret),
        public_key=public_key,
        activates_at=activates_at,
    )
    shown = secret if algorithm == SigningSecret.Algorithm.HMAC_SHA256 else ""
    return SigningKeyIssued(key=key, secret=shown, public_key=public_key)


@transaction.atomic
def signing_keys_rotate(
    *, partner: Partner, overlap: timedelta | None = None, now: datetime | None = None
) -> list[SigningKeyIssued]:
    """Rotate every scheme the partner signs with (v1 if it has no key left)."""
    now = now or timezone.now()
    algorithms = set(
        partner.signing_secrets.filter(_signing_keys_live_q(now)).values_list(
            "algorithm", flat=True
        )
    ) or {SigningSecret.Algorithm.HMAC_SHA256}
    return [
        signing_key_rotate(partner=partner, algorithm=algorithm, overlap=overlap, now=now)
        for algorithm in sorted(algorithms)
    ]


def signing_key_retire(
    *, key: SigningSecret, overlap: timedelta | None = None, now: datetime | None = None
) -> None:
    """Stop ``key`` signing after ``overlap`` (e.g. a partner drops a scheme); never extends."""
    overlap = signing_key_overlap_default() if overlap is None else overlap
    retires_at = _whole_second(now or timezone.now()) + overlap
    if key.retires_at is None or key.retires_at > retires_at:
        key.retires_at = retires_at
        key.save(update_fields=["retires_at"])


def signing_key_revoke(*, key: SigningSecret, now: datetime | None = None) -> None:
    """Stop ``key`` signing at once, overlap or not: for a key that may have leaked."""
    if key.revoked_at is None:
        key.revoked_at = now or timezone.now()
        key.save(update_fields=["revoked_at"])


def signing_key_state(*, key: SigningSecret, at: datetime) -> str:
    """Where ``key`` stands at ``at``: pending, active, overlap, retired or revoked."""
    State = SigningSecret.State
    if key.revoked_at is not None:
        return State.REVOKED
    if key.activates_at is not None and key.activates_at > at:
        return State.PENDING
    if key.retires_at is None:
        return State.ACTIVE
    return State.OVERLAP if key.retires_at > at else State.RETIRED


def signing_secret_rotate(
    *, partner: Partner, overlap: timedelta | None = None, now: datetime | None = None
) -> str:
    """Rotate the partner's v1 HMAC secret; returns the new ``whsec_`` plaintext to show once."""
    return signing_key_rotate(partner=partner, overlap=overlap, now=now).secret


def signing_secret_current(*, partner_id: int) -> str:
    """The newest v1 ``whsec_`` secret signing now; SigningSecret.DoesNotExist if none."""
    secret = (
        SigningSecret.objects.filter(
            _signing_keys_in_use_q(timezone.now()),
            partner_id=partner_id,
            algorithm=SigningSecret.Algorithm.HMAC_SHA256,
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if secret is None:
        raise SigningSecret.DoesNotExist(f"partner {partner_id} has no active signing secret")
    return decrypt(secret.secret_encrypted)


def signer_from_database(*, partner: Partner, at: datetime) -> LocalSigner:
    """The default ``SIGNER_FACTORY``: the partner's keys in use at ``at``, decrypted.

    Raises NoSigningKey when no key is in use.
    """
    # The partner's unrevoked keys, of which those in use at ``at`` sign. A push
    # attempt loaded them with its batch (statements.batch_for_send); others
    # read them here, by a statement made once.
    unrevoked = partner.unrevoked_signing_keys
    if unrevoked is None:
        unrevoked = statements.rows_read(
            SigningSecret,
            statements.SIGNING_KEY_FIELDS,
            where={"partner_id": partner.pk, "revoked_at": None},
            order_by=["-created_at", "-pk"],
        )
    keys = [key for key in unrevoked if key.signs_at(at)]
    if not keys:
        raise NoSigningKey(f"partner {partner.pk} has no signing key in use")
    return LocalSigner(keys=_signing_keys_decrypted(keys))


def _signing_keys_decrypted(keys: list[SigningSecret]) -> tuple[SigningKeyMaterial, ...]:
    material: list[SigningKeyMaterial] = []
    failure: SecretDecryptionError | None = None
    for key in keys:
        try:
            material.append(
                SigningKeyMaterial(key_id=key.key_id, secret=decrypt(key.secret_encrypted))
            )
        except SecretDecryptionError as exc:
            # One unreadable key (say, encrypted under a retired Fernet key) must
            # not stop the others signing; with none readable, fail loudly.
            logger.error("signing key %s cannot be decrypted; it does not sign", key.key_id)
            failure = exc
    if not material and failure is not None:
        raise failure
    return tuple(material)


def signing_public_keys(*, partner: Partner, at: datetime) -> list[dict[str, str]]:
    """The JWKs (RFC 8037) of the partner's v1a keys that sign now or will; never HMAC keys."""
    keys = partner.signing_secrets.filter(
        _signing_keys_live_q(at), algorithm=SigningSecret.Algorithm.ED25519
    ).order_by("-created_at", "-pk")
    return [ed25519_jwk(public_key=key.public_key, key_id=key.key_id) for key in keys]


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
