"""The whole path on real components: ingest over HTTP, a real Celery worker and beat
on Redis, PostgreSQL, and a partner simulator on 127.0.0.1 that checks our signatures
with the `standardwebhooks` package, then reports counts back for reconciliation.
"""

from __future__ import annotations

import gzip
import json
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from config.celery import app as celery_app
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.services import batch_supersede
from gateway.delivery.storage import body_read
from gateway.ingest.services import ingest_token_create
from gateway.reconciliation.models import Discrepancy
from gateway.simulator.reporter import Reporter
from gateway.simulator.server import PartnerSimulator
from partners.models import Feed, Partner
from partners.services import signing_secret_current
from tests.factories import exposure_payload, make_api_key, make_feed, make_partner
from tests.integration.conftest import wait_until
from tests.s3 import S3_KEY_ID, S3_REGION, S3_SECRET

pytestmark = pytest.mark.integration

FIELDS = ["event_id", "occurred_at", "event_type", "campaign_id", "user_id", "device", "ip"]


def _post_exposures(base_url: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    _token, plaintext = ingest_token_create(name="integration")
    body = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    response = requests.post(
        f"{base_url}/api/v1/exposures",
        data=body,
        headers={
            "Authorization": f"Bearer {plaintext}",
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        },
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()


def _exposures(count: int, **overrides: Any) -> list[dict[str, Any]]:
    # Just now: inside the feed's windows, which start a few seconds back.
    occurred_at = (timezone.now() - timedelta(seconds=1)).isoformat()
    return [exposure_payload(occurred_at=occurred_at, **overrides) for _ in range(count)]


def _push_partner(tmp_path: Path, **simulator_options: Any) -> tuple[Partner, PartnerSimulator]:
    partner = make_partner(campaigns=("cmp-1",), reporting_time_zone="America/New_York")
    simulator = PartnerSimulator(
        data_dir=tmp_path / "partner",
        secret=signing_secret_current(partner_id=partner.pk),
        time_zone="America/New_York",
        **simulator_options,
    )
    return partner, simulator


def _push_feed(partner: Partner, endpoint_url: str) -> Feed:
    return make_feed(
        partner=partner,
        endpoint_url=endpoint_url,
        gzip=True,
        batch_window_seconds=2,
        grace_seconds=0,
        field_allowlist=FIELDS,
        deliver_from=timezone.now() - timedelta(seconds=4),
    )


def _delivered_total(feed: Feed) -> int:
    return sum(
        Batch.objects.filter(feed=feed, status=Batch.Status.DELIVERED).values_list(
            "delivered_count", flat=True
        )
    )


def test_exposures_reach_the_partner_filtered_signed_once_and_reconcile(
    live_server, start_celery, tmp_path: Path
) -> None:
    partner, simulator = _push_partner(tmp_path)
    with simulator:
        feed = _push_feed(partner, simulator.url + "/exposures")
        consenting = _exposures(20)
        quartiles = _exposures(4, event_type="midpoint")
        # Opt-outs and GPC (geo US-CA) remove identifiers; the events themselves still go.
        opted_out = _exposures(5, consent={"gdpr": 0, "us_privacy": "1YYN"})
        gpc = _exposures(3, consent={"gdpr": 0, "gpc": True})
        # GDPR applies and there is no TC string: these are dropped.
        no_tc_string = _exposures(2, consent={"gdpr": 1})
        not_measured = _exposures(2, campaign_id="cmp-unassigned")
        outcome = _post_exposures(
            live_server.url,
            consenting + quartiles + opted_out + gpc + no_tc_string + not_measured,
        )
        assert outcome["accepted"] == 36

        start_celery(beat=True)
        wait_until(lambda: _delivered_total(feed) == 32, timeout=90, what="32 delivered events")
        wait_until(lambda: simulator.stats().event_total == 32, timeout=10, what="partner copy")

        batches = Batch.objects.filter(feed=feed).exclude(status=Batch.Status.EMPTY)
        assert {b.status for b in batches} == {Batch.Status.DELIVERED}
        dropped: dict[str, int] = {}
        for batch in batches:
            for reason, n in batch.dropped_by_reason.items():
                dropped[reason] = dropped.get(reason, 0) + n
        assert dropped == {"tcf_consent_missing": 2}
        # Exactly one successful attempt per batch, and the partner stored each batch once.
        attempts = DeliveryAttempt.objects.filter(batch__in=batches)
        assert attempts.count() == batches.count()
        assert {a.outcome for a in attempts} == {DeliveryAttempt.Outcome.SUCCEEDED}
        assert sorted(simulator.stats().batch_ids) == sorted(str(b.id) for b in batches)
        # Each went with the signatures its build made, which the partner verified.
        for attempt in attempts.select_related("batch"):
            assert attempt.webhook_timestamp == attempt.batch.first_signature["timestamp"]

        # What the partner holds is pseudonymised and truncated, never the raw values.
        received = "".join(p.read_text() for p in (tmp_path / "partner").rglob("*.ndjson"))
        assert "user-123" not in received
        assert "6D92078A-8246-4BA4-AE5B-76104861E7DC" not in received
        assert "203.0.113.77" not in received
        assert "203.0.113.0" in received
        assert "Oakland" not in received
        records = [json.loads(line) for line in received.splitlines() if line]
        without_ids = {e["event_id"] for e in opted_out + gpc}
        for record in records:
            if record["event_id"] in without_ids:
                assert "user_id" not in record and "ifa" not in record.get("device", {})
            else:
                assert "user_id" in record

        # The partner reports 50 % more impressions than it received: out of tolerance.
        Reporter(
            store=simulator.store,
            gateway_url=live_server.url,
            api_key=make_api_key(partner=partner),
            bias=0.5,
            event_types=("impression",),
        ).report_once()
        celery_app.send_task("reconciliation.run")
        row = wait_until(
            lambda: Discrepancy.objects.filter(
                partner=partner, campaign_id="cmp-1", partner_value__isnull=False
            ).first(),
            timeout=60,
            what="a reconciliation row with the partner's value",
        )
        assert row.partner_value == 42
        assert row.internal_delivered == 28
        assert row.internal_eligible == 28
        assert row.internal_total == 30
        assert row.status == Discrepancy.Status.EXCEEDS_TOLERANCE


def test_a_body_too_large_for_the_partner_is_rebuilt_in_parts_and_delivered_once(
    start_celery, tmp_path: Path, live_server
) -> None:
    # The runbook for a 413: cap the feed's events per batch, re-build the batch.
    partner, simulator = _push_partner(tmp_path, max_body_bytes=200)
    with simulator:
        feed = _push_feed(partner, simulator.url + "/exposures")
        sent = _exposures(12)
        _post_exposures(live_server.url, sent)
        start_celery(beat=True)
        refused = wait_until(
            lambda: Batch.objects.filter(feed=feed, status=Batch.Status.FAILED).first(),
            timeout=90,
            what="the batch refused as too large",
        )
        assert "HTTP 413" in refused.last_error and "max batch events" in refused.last_error
        assert refused.delivered_count == 12
        # Parts of three events fit; the whole body still would not (the
        # simulator limits the body both as sent and inflated).
        simulator.max_body_bytes = refused.body_bytes - 1
        assert len(body_read(refused.body_path)) <= simulator.max_body_bytes
        Feed.objects.filter(pk=feed.pk).update(max_batch_events=3)

        rebuilt = batch_supersede(batch_id=refused.pk)
        assert rebuilt is not None
        wait_until(lambda: _delivered_total(feed) == 12, timeout=90, what="12 delivered events")

        parts = list(Batch.objects.filter(feed=feed, status=Batch.Status.DELIVERED))
        assert sorted(part.part for part in parts) == [1, 2, 3, 4]
        assert {part.first_part_id for part in parts} == {None, rebuilt.pk}
        stats = simulator.stats()
        assert sorted(stats.batch_ids) == sorted(str(part.pk) for part in parts)
        accepted = [r for r in stats.requests if r.outcome == "accepted"]
        assert sorted(r.headers["gateway-batch-part"] for r in accepted) == [
            "1/4",
            "2/4",
            "3/4",
            "4/4",
        ]
        assert {r.headers.get("gateway-supersedes") for r in accepted} == {str(refused.pk), None}
        received = [
            json.loads(line)["event_id"]
            for path in (tmp_path / "partner").rglob("*.ndjson")
            for line in path.read_text().splitlines()
            if line
        ]
        assert sorted(received) == sorted(event["event_id"] for event in sent)


def test_a_partner_500_then_200_is_one_delivery_with_two_attempts(
    start_celery, tmp_path: Path, live_server
) -> None:
    partner, simulator = _push_partner(tmp_path, respond=[500])
    with simulator:
        feed = _push_feed(partner, simulator.url + "/exposures")
        _post_exposures(live_server.url, _exposures(3))
        start_celery(beat=True)
        wait_until(lambda: _delivered_total(feed) == 3, timeout=90, what="3 delivered events")

        retried = Batch.objects.get(feed=feed, attempt_count=2)
        outcomes = list(retried.attempts.order_by("number").values_list("outcome", "http_status"))
        assert outcomes == [
            (DeliveryAttempt.Outcome.TRANSIENT_FAILURE, 500),
            (DeliveryAttempt.Outcome.SUCCEEDED, 200),
        ]
        requests_for_batch = [
            r for r in simulator.stats().requests if r.webhook_id == str(retried.id)
        ]
        assert [r.status for r in requests_for_batch] == [500, 200]
        assert simulator.stats().batch_ids.count(str(retried.id)) == 1
        assert simulator.stats().event_total == 3


def test_a_worker_keeps_bodies_in_s3_and_delivers_from_there(
    start_celery, tmp_path: Path, live_server, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    """The production set-up of several worker machines: bodies in a bucket, not a directory."""
    partner, simulator = _push_partner(tmp_path, respond=[500])
    with simulator:
        feed = _push_feed(partner, simulator.url + "/exposures")
        _post_exposures(live_server.url, _exposures(3))
        start_celery(
            beat=True,
            extra_env={
                "BATCH_STORAGE": "s3",
                "BATCH_STORAGE_S3_BUCKET": bucket,
                "BATCH_STORAGE_S3_ENDPOINT_URL": s3_endpoint,
                "BATCH_STORAGE_S3_REGION": S3_REGION,
                "AWS_ACCESS_KEY_ID": S3_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            },
        )
        wait_until(lambda: _delivered_total(feed) == 3, timeout=90, what="3 delivered events")

        delivered = Batch.objects.filter(feed=feed, status=Batch.Status.DELIVERED)
        keys = {item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
        assert {f"batches/{batch.body_path}" for batch in delivered} <= keys
        # Nothing went to the directory this process would have used.
        directory = Path(settings.STORAGES["batches"]["OPTIONS"]["location"])
        assert not any((directory / batch.body_path).exists() for batch in delivered)
        # The first attempt (the build's signatures) got a 500, the retry (signed
        # afresh) a 200: each verified by the partner, the events stored once.
        retried = delivered.get(attempt_count=2)
        requests_for_batch = [
            r for r in simulator.stats().requests if r.webhook_id == str(retried.id)
        ]
        assert [r.status for r in requests_for_batch] == [500, 200]
        assert simulator.stats().event_total == 3


def test_a_partner_400_fails_the_batch_permanently_and_admin_shows_it(
    start_celery, tmp_path: Path, live_server
) -> None:
    partner, simulator = _push_partner(tmp_path, respond=[400] * 20)
    with simulator:
        feed = _push_feed(partner, simulator.url + "/exposures")
        _post_exposures(live_server.url, _exposures(2))
        start_celery(beat=True)
        failed = wait_until(
            lambda: Batch.objects.filter(feed=feed, status=Batch.Status.FAILED).first(),
            timeout=90,
            what="a failed batch",
        )
        attempt = failed.attempts.get()
        assert attempt.outcome == DeliveryAttempt.Outcome.PERMANENT_FAILURE
        assert attempt.http_status == 400
        assert simulator.stats().event_total == 0

    admin_user = User.objects.create_superuser("oncall", "oncall@example.com", "pw-oncall-1")
    client = Client()
    client.force_login(admin_user)
    page = client.get("/admin/delivery/batch/", {"status__exact": "failed"})
    assert page.status_code == 200
    assert str(failed.id) in page.content.decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_retried_until_the_partner_is_back(
    start_celery, tmp_path: Path, live_server
) -> None:
    port = _free_port()
    partner, simulator = _push_partner(tmp_path, port=port)
    feed = _push_feed(partner, f"http://127.0.0.1:{port}/exposures")
    _post_exposures(live_server.url, _exposures(2))
    start_celery(beat=True)
    wait_until(
        lambda: DeliveryAttempt.objects.filter(
            batch__feed=feed, outcome=DeliveryAttempt.Outcome.TRANSIENT_FAILURE
        ).exists(),
        timeout=90,
        what="a refused attempt",
    )
    refused = DeliveryAttempt.objects.filter(batch__feed=feed).first()
    assert refused.http_status is None
    assert refused.error

    with simulator:
        wait_until(lambda: _delivered_total(feed) == 2, timeout=90, what="delivery after restart")
        batch = Batch.objects.get(feed=feed, status=Batch.Status.DELIVERED)
        assert batch.attempts.count() >= 2
        assert batch.attempts.order_by("-number").first().outcome == "succeeded"
        assert simulator.stats().event_total == 2
