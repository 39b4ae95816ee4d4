from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.core.exceptions import ValidationError

from gateway.ingest.models import Exposure
from partners.models import ApiKey, CampaignAssignment, ConsentRule, Feed, SigningSecret
from partners.secrets import decrypt
from partners.selectors import api_key_authenticate, campaign_scope_q
from partners.services import (
    api_key_create,
    api_key_revoke,
    partner_create,
    partner_provision,
    pseudonym_keys_in_use,
    signing_secret_current,
    signing_secret_rotate,
)
from tests.factories import make_partner

pytestmark = pytest.mark.django_db


def test_a_new_partner_gets_a_default_consent_rule_and_keys() -> None:
    partner, secret = partner_create(slug="acme", name="Acme Measurement")
    assert secret.startswith("whsec_")
    assert ConsentRule.objects.get(partner=partner).required_tcf_purposes == [1, 7]
    assert signing_secret_current(partner_id=partner.pk) == secret
    assert len(pseudonym_keys_in_use(partner_id=partner.pk)[0]) > 30


def test_secrets_are_stored_encrypted() -> None:
    partner, secret = partner_create(slug="acme", name="Acme")
    stored = SigningSecret.objects.get(partner=partner).secret_encrypted
    assert secret not in stored
    assert decrypt(stored) == secret


def test_provisioning_twice_creates_nothing_new() -> None:
    partner, _secret = partner_create(slug="acme", name="Acme")
    assert partner_provision(partner=partner) == ""
    assert SigningSecret.objects.filter(partner=partner).count() == 1


def test_rotating_the_signing_secret_retires_the_old_one_after_the_overlap() -> None:
    partner, old = partner_create(slug="acme", name="Acme")
    new = signing_secret_rotate(partner=partner)
    assert new != old
    assert signing_secret_current(partner_id=partner.pk) == new
    [retiring] = SigningSecret.objects.filter(partner=partner, retires_at__isnull=False)
    assert decrypt(retiring.secret_encrypted) == old
    assert retiring.revoked_at is None


def test_partner_create_validates_the_time_zone() -> None:
    with pytest.raises(ValidationError):
        partner_create(slug="acme", name="Acme", reporting_time_zone="Mars/Olympus")


def test_api_keys_are_stored_as_a_hash_and_authenticate() -> None:
    partner = make_partner()
    api_key, plaintext = api_key_create(partner=partner, name="prod")
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert plaintext not in (stored.key_hash, stored.prefix)
    authenticated = api_key_authenticate(plaintext=plaintext)
    assert authenticated is not None
    assert authenticated.partner == partner
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


def test_revoked_or_wrong_api_keys_do_not_authenticate() -> None:
    partner = make_partner()
    api_key, plaintext = api_key_create(partner=partner, name="prod")
    assert api_key_authenticate(plaintext=plaintext[:-1] + "x") is None
    assert api_key_authenticate(plaintext="not-a-key") is None
    api_key_revoke(api_key=api_key)
    assert api_key_authenticate(plaintext=plaintext) is None


def _exposure(event_id: str, campaign_id: str, occurred_at: datetime) -> Exposure:
    return Exposure.objects.create(
        event_id=event_id,
        occurred_at=occurred_at,
        event_type="impression",
        media_type="audio",
        content_type="music",
        advertiser_id="a",
        campaign_id=campaign_id,
        line_item_id="l",
        creative_id="c",
        payload={},
    )


def test_campaign_scope_uses_days_in_the_partners_time_zone() -> None:
    partner = make_partner(campaigns=(), reporting_time_zone="America/New_York")
    CampaignAssignment.objects.create(
        partner=partner, campaign_id="cmp-1", starts_on=date(2026, 11, 2), ends_on=date(2026, 11, 2)
    )
    # 03:30 UTC on the 2nd is still the 1st in New York; 04:30 UTC on the 3rd is still the 2nd.
    _exposure("before", "cmp-1", datetime(2026, 11, 2, 3, 30, tzinfo=UTC))
    _exposure("first", "cmp-1", datetime(2026, 11, 2, 5, 30, tzinfo=UTC))
    _exposure("last", "cmp-1", datetime(2026, 11, 3, 4, 30, tzinfo=UTC))
    _exposure("after", "cmp-1", datetime(2026, 11, 3, 5, 30, tzinfo=UTC))
    _exposure("other-campaign", "cmp-2", datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    in_scope = Exposure.objects.filter(campaign_scope_q(partner=partner))
    assert sorted(in_scope.values_list("event_id", flat=True)) == ["first", "last"]


def test_a_partner_without_campaigns_matches_no_exposure() -> None:
    partner = make_partner(campaigns=())
    _exposure("e1", "cmp-1", datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    assert not Exposure.objects.filter(campaign_scope_q(partner=partner)).exists()


def test_a_push_feed_needs_an_https_public_endpoint_in_production(settings) -> None:
    settings.ALLOW_PRIVATE_ENDPOINTS = False
    partner = make_partner()
    feed = Feed(
        partner=partner,
        name="push",
        mode=Feed.Mode.PUSH,
        endpoint_url="http://127.0.0.1:9000/in",
        deliver_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(ValidationError, match="https"):
        feed.full_clean()
    feed.endpoint_url = "https://127.0.0.1:9000/in"
    with pytest.raises(ValidationError, match="non-public"):
        feed.full_clean()


def test_a_consent_rule_only_takes_tcf_purpose_ids() -> None:
    partner = make_partner()
    rule = partner.consent_rule
    rule.required_tcf_purposes = [1, 99]
    with pytest.raises(ValidationError):
        rule.full_clean()
    rule.required_tcf_purposes = ["7"]
    with pytest.raises(ValidationError):
        rule.full_clean()


def test_a_rotated_pseudonym_key_keeps_working_during_the_overlap() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from partners.services import pseudonym_key_rotate

    partner = make_partner()
    old, none = pseudonym_keys_in_use(partner_id=partner.pk)
    assert none == b""
    now = timezone.now()
    pseudonym_key_rotate(partner=partner, overlap=timedelta(hours=1), now=now)
    current, previous = pseudonym_keys_in_use(partner_id=partner.pk, now=now)
    assert current != old
    assert previous == old
    after_overlap = pseudonym_keys_in_use(partner_id=partner.pk, now=now + timedelta(hours=2))
    assert after_overlap == (current, b"")


def test_campaigns_with_the_same_dates_share_one_clause_and_others_keep_theirs() -> None:
    partner = make_partner(campaigns=(), reporting_time_zone="UTC")
    for campaign_id in ("cmp-a", "cmp-b", "cmp-c"):
        CampaignAssignment.objects.create(
            partner=partner, campaign_id=campaign_id, starts_on=date(2026, 11, 1)
        )
    CampaignAssignment.objects.create(
        partner=partner, campaign_id="cmp-late", starts_on=date(2026, 11, 10)
    )
    CampaignAssignment.objects.create(
        partner=partner, campaign_id="cmp-short", starts_on=date(2026, 11, 1),
        ends_on=date(2026, 11, 1),
    )  # fmt: skip
    for campaign_id in ("cmp-a", "cmp-b", "cmp-c", "cmp-late", "cmp-short", "cmp-other"):
        _exposure(f"{campaign_id}-early", campaign_id, datetime(2026, 11, 1, 12, tzinfo=UTC))
        _exposure(f"{campaign_id}-later", campaign_id, datetime(2026, 11, 12, 12, tzinfo=UTC))

    scope = campaign_scope_q(partner=partner)

    # One clause per distinct (start, end): three, not five.
    assert str(scope).count("campaign_id__in") == 3
    assert sorted(Exposure.objects.filter(scope).values_list("event_id", flat=True)) == [
        "cmp-a-early", "cmp-a-later", "cmp-b-early", "cmp-b-later", "cmp-c-early",
        "cmp-c-later", "cmp-late-later", "cmp-short-early",
    ]  # fmt: skip
