"""The demo seed: idempotent, secrets that work, and a private var/demo.json."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from gateway.delivery.windows import DEFAULT_MAX_WINDOWS, closed_windows
from gateway.demo.catalog import DEMO_PARTNERS, DV_DEMO, IAS_DEMO, NIELSEN_DEMO
from gateway.demo.seed import (
    DEMO_KEY_NAME,
    DEMO_TOKEN_NAME,
    DemoSecrets,
    demo_file_path,
    demo_secrets_read,
    demo_seed,
)
from gateway.demo.synthetic import ExposureGenerator
from gateway.ingest.models import IngestToken
from gateway.ingest.selectors import ingest_token_authenticate
from partners.models import ApiKey, CampaignAssignment, ConsentRule, Feed, Partner, SigningSecret
from partners.selectors import api_key_authenticate
from partners.services import signing_secret_current

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(tmp_path: Path) -> DemoSecrets:
    return demo_seed(var_dir=tmp_path)


def _row_counts() -> dict[str, int]:
    return {
        "partners": Partner.objects.count(),
        "feeds": Feed.objects.count(),
        "assignments": CampaignAssignment.objects.count(),
        "rules": ConsentRule.objects.count(),
        "secrets": SigningSecret.objects.count(),
        "api_keys": ApiKey.objects.count(),
        "tokens": IngestToken.objects.count(),
        "users": get_user_model().objects.count(),
    }


def test_it_creates_both_partners_with_their_feeds_assignments_and_consent_rules(
    seeded: DemoSecrets,
) -> None:
    nielsen = Partner.objects.get(slug=NIELSEN_DEMO.slug)
    ias = Partner.objects.get(slug=IAS_DEMO.slug)

    assert (nielsen.reporting_time_zone, ias.reporting_time_zone) == (
        "America/New_York",
        "Europe/London",
    )
    assert nielsen.gvl_vendor_id == NIELSEN_DEMO.gvl_vendor_id
    push = nielsen.feeds.get()
    assert (push.mode, push.gzip, push.endpoint_url) == (
        "push",
        True,
        f"http://127.0.0.1:{NIELSEN_DEMO.simulator_port}/exposures",
    )
    assert push.batch_window_seconds == 3600 and push.grace_seconds == 5
    assert "device.ifa" in push.field_allowlist
    pull = ias.feeds.get()
    assert (pull.mode, pull.gzip, pull.endpoint_url) == ("pull", False, "")
    assert sorted(nielsen.campaign_assignments.values_list("campaign_id", flat=True)) == sorted(
        NIELSEN_DEMO.campaign_ids
    )
    assert nielsen.consent_rule.required_tcf_purposes == [1, 7]


def test_the_secrets_in_demo_json_all_work_against_the_database(
    seeded: DemoSecrets, tmp_path: Path
) -> None:
    saved = demo_secrets_read(demo_file_path(tmp_path))

    assert saved is not None
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(saved.admin_password)
    ingest_token_authenticate(plaintext=saved.ingest_token)
    for spec in DEMO_PARTNERS:
        partner_secrets = saved.partners[spec.slug]
        api_key = api_key_authenticate(plaintext=partner_secrets.api_key)
        assert api_key is not None and api_key.partner.slug == spec.slug
        partner = Partner.objects.get(slug=spec.slug)
        assert signing_secret_current(partner_id=partner.pk) == partner_secrets.signing_secret
        assert partner_secrets.signing_secret.startswith("whsec_")
        assert partner_secrets.simulator_port == spec.simulator_port
        assert partner_secrets.report_bias == spec.report_bias


def test_demo_json_is_readable_by_its_owner_only(seeded: DemoSecrets, tmp_path: Path) -> None:
    mode = stat.S_IMODE(demo_file_path(tmp_path).stat().st_mode)

    assert mode == 0o600


def test_demo_json_names_the_admin_url_and_gateway(seeded: DemoSecrets, tmp_path: Path) -> None:
    data = json.loads(demo_file_path(tmp_path).read_text())

    assert data["admin_url"] == "http://127.0.0.1:8000/admin/"
    assert data["gateway_url"] == "http://127.0.0.1:8000"
    assert set(data["partners"]) == {"nielsen-demo", "ias-demo", "dv-demo"}


def test_seeding_twice_changes_no_secret_and_adds_no_row(
    seeded: DemoSecrets, tmp_path: Path
) -> None:
    before = _row_counts()

    again = demo_seed(var_dir=tmp_path)

    assert again == seeded
    assert _row_counts() == before


def test_a_lost_demo_json_rotates_every_secret_and_retires_the_old_ones(
    seeded: DemoSecrets, tmp_path: Path
) -> None:
    demo_file_path(tmp_path).unlink()

    fresh = demo_seed(var_dir=tmp_path)

    assert fresh.admin_password != seeded.admin_password
    assert fresh.ingest_token != seeded.ingest_token
    for slug, old in seeded.partners.items():
        assert fresh.partners[slug].api_key != old.api_key
        assert fresh.partners[slug].signing_secret != old.signing_secret
        assert api_key_authenticate(plaintext=old.api_key) is None
        assert api_key_authenticate(plaintext=fresh.partners[slug].api_key) is not None
    assert ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True).count() == 3
    assert IngestToken.objects.filter(name=DEMO_TOKEN_NAME, revoked_at__isnull=True).count() == 1
    assert Partner.objects.count() == 3
    assert get_user_model().objects.get(username="admin").check_password(fresh.admin_password)


def test_a_corrupt_demo_json_is_treated_as_lost(seeded: DemoSecrets, tmp_path: Path) -> None:
    demo_file_path(tmp_path).write_text("{not json")

    fresh = demo_seed(var_dir=tmp_path)

    assert fresh.ingest_token != seeded.ingest_token
    ingest_token_authenticate(plaintext=fresh.ingest_token)


def test_only_the_secret_that_no_longer_works_is_replaced(
    seeded: DemoSecrets, tmp_path: Path
) -> None:
    ApiKey.objects.filter(partner__slug="ias-demo").delete()

    fresh = demo_seed(var_dir=tmp_path)

    assert fresh.partners["ias-demo"].api_key != seeded.partners["ias-demo"].api_key
    assert fresh.partners["nielsen-demo"] == seeded.partners["nielsen-demo"]
    assert fresh.partners["dv-demo"] == seeded.partners["dv-demo"]
    assert fresh.admin_password == seeded.admin_password


def test_new_ports_move_the_push_endpoint(seeded: DemoSecrets, tmp_path: Path) -> None:
    demo = demo_seed(var_dir=tmp_path, web_port=8650, simulator_ports={"nielsen-demo": 8651})

    feed = Feed.objects.get(partner__slug="nielsen-demo")
    assert feed.endpoint_url == "http://127.0.0.1:8651/exposures"
    assert demo.partners["nielsen-demo"].simulator_port == 8651
    assert demo.admin_url == "http://127.0.0.1:8650/admin/"


def test_an_existing_admin_user_gets_a_known_password_and_superuser_rights(
    tmp_path: Path,
) -> None:
    get_user_model().objects.create_user("admin", password="forgotten-long-ago")

    demo = demo_seed(var_dir=tmp_path)

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(demo.admin_password)


def test_without_private_endpoints_allowed_the_push_feed_is_refused(
    tmp_path: Path, settings: Settings
) -> None:
    settings.ALLOW_PRIVATE_ENDPOINTS = False
    settings.VAR_DIR = tmp_path

    with pytest.raises(ValidationError):
        demo_seed(var_dir=tmp_path)
    with pytest.raises(CommandError, match="ALLOW_PRIVATE_ENDPOINTS"):
        call_command("seed_demo")


def test_the_seed_demo_command_reports_where_the_credentials_are(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.VAR_DIR = tmp_path

    call_command("seed_demo", "--nielsen-demo-port", "9101")

    out = capsys.readouterr().out
    assert str(tmp_path / "demo.json") in out
    assert "nielsen-demo (push)" in out
    assert Feed.objects.get(partner__slug="nielsen-demo").endpoint_url.endswith(":9101/exposures")


def test_the_seed_uploads_a_vendor_list_declaring_the_demo_vendors(tmp_path) -> None:
    from gateway.demo.catalog import DEMO_PARTNERS
    from gateway.demo.seed import demo_seed
    from gateway.privacy.gvl import parse_gvl
    from partners.models import GlobalVendorList

    demo_seed(var_dir=tmp_path)
    demo_seed(var_dir=tmp_path)
    snapshot = GlobalVendorList.objects.get()
    gvl = parse_gvl(snapshot.document)
    for partner in DEMO_PARTNERS:
        assert 7 in gvl.vendor(partner.gvl_vendor_id).purposes


# --- feeds: windows for the history, a stream for live traffic ---------------------

SEEDED_AT = datetime(2026, 11, 24, 15, 42, 17, tzinfo=UTC)
USER_IDS = {"user_id", "household_id", "device.ifa"}


def _feed(slug: str) -> Feed:
    return Feed.objects.select_related("partner").get(partner__slug=slug)


def _occurred(event: dict) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def test_it_creates_three_partners_two_with_hourly_windows_and_one_streaming(
    tmp_path: Path,
) -> None:
    demo = demo_seed(var_dir=tmp_path, now=SEEDED_AT)

    assert {slug: p.mode for slug, p in demo.partners.items()} == {
        "nielsen-demo": "push",
        "ias-demo": "pull",
        "dv-demo": "stream",
    }
    for slug in ("nielsen-demo", "ias-demo"):
        feed = _feed(slug)
        assert (feed.batch_window_seconds, feed.grace_seconds) == (3600, 5)
    # Nielsen's busier hours come in parts; the others' batches are whole.
    assert [_feed(slug).max_batch_events for slug in ("nielsen-demo", "ias-demo", "dv-demo")] == [
        100,
        None,
        None,
    ]
    stream = _feed("dv-demo")
    assert stream.partner.name == "DoubleVerify (demo)"
    assert stream.mode == Feed.Mode.STREAM and stream.enabled
    assert stream.endpoint_url == "http://127.0.0.1:8103/exposures"
    assert (stream.stream_max_delay_ms, stream.stream_max_events) == (250, 500)
    assert demo.partners["dv-demo"].simulator_port == 8103


def test_the_stream_partner_gets_verification_fields_without_user_or_device_ids(
    tmp_path: Path,
) -> None:
    demo_seed(var_dir=tmp_path, now=SEEDED_AT)

    allowlist = set(_feed("dv-demo").field_allowlist)

    assert not allowlist & USER_IDS
    assert {"event_id", "occurred_at", "event_type", "campaign_id", "ip", "user_agent"} <= allowlist


def test_the_stream_partner_measures_campaigns_of_both_others_and_one_of_its_own() -> None:
    dv = set(DV_DEMO.campaign_ids)
    others = set(NIELSEN_DEMO.campaign_ids) | set(IAS_DEMO.campaign_ids)

    assert dv & set(NIELSEN_DEMO.campaign_ids)
    assert dv & set(IAS_DEMO.campaign_ids)
    assert dv - others


def test_window_feeds_start_at_the_hour_before_the_synthetic_history(tmp_path: Path) -> None:
    demo_seed(var_dir=tmp_path, now=SEEDED_AT)

    for slug in ("nielsen-demo", "ias-demo"):
        # The seed less 3 days and 5 minutes is 15:37:17 on the 21st: its hour.
        assert _feed(slug).deliver_from == datetime(2026, 11, 21, 15, 0, tzinfo=UTC)


def test_one_dispatcher_run_cuts_every_window_of_the_history(tmp_path: Path) -> None:
    demo_seed(var_dir=tmp_path, now=SEEDED_AT)
    # The load and the first dispatch come a little after the seed.
    first_dispatch = SEEDED_AT + timedelta(minutes=1)

    for slug in ("nielsen-demo", "ias-demo"):
        feed = _feed(slug)
        windows = closed_windows(
            start=feed.deliver_from,
            length_seconds=feed.batch_window_seconds,
            grace_seconds=feed.grace_seconds,
            now=first_dispatch,
            limit=10_000,
        )
        assert 72 <= len(windows) <= DEFAULT_MAX_WINDOWS


def test_the_whole_history_and_live_traffic_occur_after_deliver_from(tmp_path: Path) -> None:
    demo_seed(var_dir=tmp_path, now=SEEDED_AT)
    history_feed = _feed("nielsen-demo")
    stream_feed = _feed("dv-demo")
    # The load starts after the children are up; live traffic right after the load.
    generator = ExposureGenerator(seed=5, now=SEEDED_AT + timedelta(seconds=20), listeners=200)

    history = generator.exposures(3000)
    live = generator.live(200, now=SEEDED_AT + timedelta(seconds=30))

    assert min(map(_occurred, history)) >= history_feed.deliver_from
    assert min(map(_occurred, live)) >= stream_feed.deliver_from
    # The stream partner starts at the seed: the history is not for it.
    assert stream_feed.deliver_from > SEEDED_AT - timedelta(minutes=3)


def test_the_stream_partner_measures_its_campaigns_from_the_day_of_the_seed(
    tmp_path: Path,
) -> None:
    demo_seed(var_dir=tmp_path, now=SEEDED_AT)
    seed_day = SEEDED_AT.astimezone(ZoneInfo(DV_DEMO.reporting_time_zone)).date()

    dv_starts = set(
        CampaignAssignment.objects.filter(partner__slug="dv-demo").values_list(
            "starts_on", flat=True
        )
    )
    nielsen_starts = set(
        CampaignAssignment.objects.filter(partner__slug="nielsen-demo").values_list(
            "starts_on", flat=True
        )
    )

    assert dv_starts == {seed_day}
    assert max(nielsen_starts) <= SEEDED_AT.date() - timedelta(days=3)


def test_a_later_seed_restores_the_feeds_but_never_moves_deliver_from(tmp_path: Path) -> None:
    demo_seed(var_dir=tmp_path, now=SEEDED_AT)
    before = {f.pk: f.deliver_from for f in Feed.objects.all()}
    Feed.objects.filter(partner__slug="nielsen-demo").update(batch_window_seconds=20)
    Feed.objects.filter(partner__slug="dv-demo").update(stream_max_delay_ms=5000)

    demo_seed(var_dir=tmp_path, now=SEEDED_AT + timedelta(days=2))

    assert {f.pk: f.deliver_from for f in Feed.objects.all()} == before
    assert _feed("nielsen-demo").batch_window_seconds == 3600
    assert _feed("dv-demo").stream_max_delay_ms == 250


def test_reconciliation_shows_partners_within_and_outside_tolerance(tmp_path: Path) -> None:
    demo_seed(var_dir=tmp_path, now=SEEDED_AT)

    within = outside = 0
    for spec in DEMO_PARTNERS:
        tolerance = Partner.objects.get(slug=spec.slug).reconciliation_tolerance_pct / 100
        within += abs(spec.report_bias) < tolerance
        outside += abs(spec.report_bias) > tolerance

    assert within >= 1 and outside >= 1


def test_the_stream_partners_port_option_moves_its_endpoint(
    tmp_path: Path, settings: Settings
) -> None:
    settings.VAR_DIR = tmp_path

    call_command("seed_demo", "--dv-demo-port", "9203")

    assert _feed("dv-demo").endpoint_url == "http://127.0.0.1:9203/exposures"
    saved = demo_secrets_read(demo_file_path(tmp_path))
    assert saved is not None and saved.partners["dv-demo"].simulator_port == 9203
