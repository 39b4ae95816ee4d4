"""Consent configuration in admin: activity rules, the privacy preview, GVL upload,
privacy settings, model validation, and how it all becomes a PartnerPolicy."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from gateway.delivery.policies import PolicyConfigurationError, policy_for
from gateway.privacy.activities import ActivityRuleSpec, PurposeRequirement
from partners.models import ActivityRule, ConsentRule, GlobalVendorList, PrivacySettings
from tests.delivery.builders import make_exposure
from tests.factories import make_feed, make_partner
from tests.privacy.engine_builders import gvl_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("manager", "m@example.com", "pw-manager-1"))
    return client


def _gvl(version: int = 150, **vendor: object) -> GlobalVendorList:
    document = gvl_document(**vendor)
    document["vendorListVersion"] = version
    return GlobalVendorList.objects.create(version=version, tcf_policy_version=5, document=document)


# --- Model validation -----------------------------------------------------------------------


def test_an_activity_rule_with_unknown_names_is_refused() -> None:
    rule = ActivityRule(
        partner=make_partner(),
        activity="transmit_ip",
        position=1,
        effect="deny",
        regimes=["gdpr"],
        gpp_sections=["usxx"],
        countries=["Germany"],
        regions=["CA"],
    )

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    assert set(caught.value.message_dict) == {"regimes", "gpp_sections", "countries", "regions"}


def test_a_valid_activity_rule_passes() -> None:
    ActivityRule(
        partner=make_partner(),
        activity="transmit_user_ids",
        position=1,
        effect="deny",
        regimes=["us_state"],
        gpp_sections=["usca"],
        countries=["US"],
        regions=["US-CA"],
        gpc=True,
    ).full_clean()


def test_consent_rule_activity_settings_are_validated() -> None:
    rule = ConsentRule.objects.get(partner=make_partner())
    rule.activity_purposes = {"transmit_event": {"purposes": [99]}}
    rule.activity_defaults = {"transmit_ip": "sometimes"}

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    assert set(caught.value.message_dict) == {"activity_purposes", "activity_defaults"}


def test_a_gvl_snapshot_must_be_a_valid_list_of_its_version() -> None:
    snapshot = GlobalVendorList(version=151, tcf_policy_version=5, document=gvl_document())
    with pytest.raises(ValidationError) as caught:
        snapshot.full_clean()
    assert "version" in caught.value.message_dict

    broken = GlobalVendorList(version=150, tcf_policy_version=5, document={"vendors": []})
    with pytest.raises(ValidationError) as caught:
        broken.full_clean()
    assert "document" in caught.value.message_dict


# --- Policy ---------------------------------------------------------------------------------


def test_the_policy_carries_rules_settings_and_the_newest_gvl() -> None:
    partner = make_partner()
    _gvl(149)
    _gvl(150)
    ActivityRule.objects.create(
        partner=partner, activity="transmit_ip", position=2, effect="deny", countries=["us"]
    )
    rule = ConsentRule.objects.get(partner=partner)
    rule.activity_purposes = {"transmit_event": {"purposes": [7, 8]}}
    rule.activity_defaults = {"transmit_user_agent": "deny"}
    rule.save()
    PrivacySettings.objects.filter(pk=1).update(gpc_states=["ca", "CO"], default_regime="deny")

    policy = policy_for(partner=partner)

    assert policy.gvl_version == 150
    assert policy.gvl.vendor_list_version == 150
    assert policy.activity_rules == (
        ActivityRuleSpec(
            activity="transmit_ip", position=2, effect="deny", countries=frozenset({"US"})
        ),
    )
    assert policy.activity_purposes == (("transmit_event", PurposeRequirement(purposes=(7, 8))),)
    assert policy.activity_defaults == (("transmit_user_agent", "deny"),)
    assert policy.gpc_states == frozenset({"CA", "CO"})
    assert policy.default_regime == "deny"
    hash(policy)


def test_a_pinned_gvl_snapshot_wins_over_the_newest() -> None:
    pinned = _gvl(149)
    _gvl(150)
    partner = make_partner(gvl_snapshot=pinned)

    assert policy_for(partner=partner).gvl_version == 149


def test_without_any_gvl_the_policy_has_none() -> None:
    policy = policy_for(partner=make_partner())

    assert policy.gvl is None and policy.gvl_version is None


def test_an_invalid_stored_consent_rule_fails_closed() -> None:
    partner = make_partner()
    ConsentRule.objects.filter(partner=partner).update(activity_defaults={"transmit_ip": "x"})

    with pytest.raises(PolicyConfigurationError):
        policy_for(partner=partner)


# --- Admin ----------------------------------------------------------------------------------


def test_an_activity_rule_is_validated_in_admin(staff_client: Client) -> None:
    partner = make_partner()
    url = reverse("admin:partners_activityrule_add")
    data = {
        "partner": partner.pk,
        "activity": "transmit_ip",
        "position": 1,
        "effect": "deny",
        "regimes": '["tcf"]',
        "gpp_sections": "[]",
        "countries": '["DE"]',
        "regions": '["DE-BY"]',
        "gpc": "unknown",
        "coppa": "unknown",
        "note": "",
    }

    refused = staff_client.post(url, {**data, "regimes": '["eu"]'})
    accepted = staff_client.post(url, data)

    assert refused.status_code == 200 and "Must be a list of" in refused.content.decode()
    assert accepted.status_code == 302
    assert ActivityRule.objects.get(partner=partner).regions == ["DE-BY"]


def test_the_privacy_preview_explains_a_pasted_exposure(staff_client: Client) -> None:
    partner = make_partner()
    make_feed(partner=partner, field_allowlist=["event_id", "user_id"])
    ActivityRule.objects.create(
        partner=partner, activity="transmit_user_ids", position=1, effect="deny", gpc=True
    )
    url = reverse("admin:partners_partner_privacy", args=[partner.pk])
    payload = {"event_id": "evt-1", "user_id": "u", "consent": {"gdpr": 0, "gpc": True}}

    page = staff_client.get(url)
    response = staff_client.post(url, {"payload": json.dumps(payload)})

    assert page.status_code == 200
    text = response.content.decode()
    assert response.status_code == 200
    assert "transmit_user_ids" in text and "matched" in text
    assert response.context["explanation"]["decision"]["eligible"] is True
    [ids] = [
        a
        for a in response.context["explanation"]["activities"]
        if a["activity"] == ("transmit_user_ids")
    ]
    assert ids["decided_by"] == "rule" and ids["allowed"] is False


def test_the_privacy_preview_explains_a_stored_exposure(staff_client: Client) -> None:
    partner = make_partner()
    exposure = make_exposure(received_at=datetime(2026, 11, 24, tzinfo=UTC), consent={"gdpr": 1})
    url = reverse("admin:partners_partner_privacy", args=[partner.pk])

    response = staff_client.get(url, {"event_id": exposure.event_id})

    assert response.context["explanation"]["decision"]["reason"] == "tcf_consent_missing"


def test_the_privacy_preview_reports_bad_input(staff_client: Client) -> None:
    url = reverse("admin:partners_partner_privacy", args=[make_partner().pk])

    not_json = staff_client.post(url, {"payload": "{nope"})
    unknown = staff_client.get(url, {"event_id": "evt-missing"})

    assert "not valid JSON" in not_json.content.decode()
    assert unknown.context["error"] and unknown.context["explanation"] is None


def test_the_exposure_page_links_to_the_explanation(staff_client: Client) -> None:
    partner = make_partner(slug="nielsen")
    exposure = make_exposure(received_at=datetime(2026, 11, 24, tzinfo=UTC))

    page = staff_client.get(reverse("admin:ingest_exposure_change", args=[exposure.pk]))

    link = reverse("admin:partners_partner_privacy", args=[partner.pk])
    assert f"{link}?event_id={exposure.event_id}" in page.content.decode()


def test_a_gvl_is_uploaded_as_a_file(staff_client: Client) -> None:
    url = reverse("admin:partners_globalvendorlist_add")
    upload = SimpleUploadedFile("vendor-list.json", json.dumps(gvl_document()).encode())

    response = staff_client.post(url, {"upload": upload})

    assert response.status_code == 302
    snapshot = GlobalVendorList.objects.get()
    assert (snapshot.version, snapshot.tcf_policy_version) == (150, 5)
    assert snapshot.document["vendors"]["793"]["name"] == "Measurer"
    again = SimpleUploadedFile("vendor-list.json", json.dumps(gvl_document()).encode())
    assert "already uploaded" in staff_client.post(url, {"upload": again}).content.decode()


def test_an_invalid_gvl_upload_is_refused(staff_client: Client) -> None:
    url = reverse("admin:partners_globalvendorlist_add")
    upload = SimpleUploadedFile("vendor-list.json", b'{"vendors": {}}')

    response = staff_client.post(url, {"upload": upload})

    assert response.status_code == 200
    assert not GlobalVendorList.objects.exists()


def test_privacy_settings_are_one_row_with_validated_states(staff_client: Client) -> None:
    settings = PrivacySettings.objects.get(pk=1)
    url = reverse("admin:partners_privacysettings_change", args=[settings.pk])
    data = {"default_regime": "us_national", "pseudonym_key_overlap_hours": 720}

    refused = staff_client.post(url, {**data, "gpc_states": '["California"]'})
    saved = staff_client.post(url, {**data, "gpc_states": '["ca", "CO"]'})

    assert refused.status_code == 200
    assert saved.status_code == 302
    settings.refresh_from_db()
    assert (settings.gpc_states, settings.default_regime) == (["CA", "CO"], "us_national")
    add = staff_client.get(reverse("admin:partners_privacysettings_add"))
    assert add.status_code == 403
