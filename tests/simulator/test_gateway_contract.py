"""The simulator against the gateway's real code: its signer, its partner API, over HTTP.

These tests catch drift between what the gateway sends and what a partner
(checking with the reference standardwebhooks library) accepts.
"""

from __future__ import annotations

import gzip
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.delivery.body import BodyWriter
from gateway.delivery.signing import webhook_headers
from gateway.delivery.transport import post
from gateway.reconciliation.models import PartnerReport
from gateway.simulator.puller import Puller
from gateway.simulator.reporter import Reporter
from gateway.simulator.server import PartnerSimulator
from gateway.simulator.store import BatchStore
from partners.models import CampaignAssignment, Feed, Partner
from partners.services import partner_create
from tests.factories import make_api_key, make_feed
from tests.partner_api.builders import make_ready_batch
from tests.simulator.conftest import event


def _records(n: int, *, occurred_at: str) -> list[dict[str, Any]]:
    return [event(event_id=f"e{i}", occurred_at=occurred_at) for i in range(n)]


def test_a_batch_signed_and_sent_by_the_gateway_is_accepted(tmp_path: Path, secret: str) -> None:
    writer = BodyWriter()
    for record in _records(3, occurred_at="2026-11-24T12:00:00Z"):
        writer.write(record)
    body = writer.finish()
    batch_id = str(uuid.uuid4())
    headers = webhook_headers(
        secret=secret,
        msg_id=batch_id,
        timestamp=int(time.time()),
        payload=gzip.decompress(body.read_gzip()),
    )

    with PartnerSimulator(data_dir=tmp_path, secret=secret) as sim:
        result = post(
            url=f"{sim.url}/exposures",
            body=body.read_gzip(),
            headers={
                **headers,
                "Content-Type": "application/x-ndjson",
                "Content-Encoding": "gzip",
            },
            timeout=5,
        )
        stats = sim.stats()

    assert result.status == 200, result.response_excerpt
    assert stats.batch_ids == [batch_id]
    assert stats.event_total == 3


@pytest.fixture
def pull_partner(transactional_db: None) -> tuple[Partner, str]:
    partner, secret = partner_create(
        slug="ias-test", name="IAS test", gvl_vendor_id=1002, reporting_time_zone="Europe/London"
    )
    CampaignAssignment.objects.create(
        partner=partner, campaign_id="cmp-1", starts_on=datetime(2026, 1, 1).date()
    )
    return partner, secret


@pytest.mark.parametrize("compressed", [True, False])
def test_the_puller_downloads_and_verifies_batches_from_the_real_partner_api(
    pull_partner: tuple[Partner, str], live_server: Any, tmp_path: Path, compressed: bool
) -> None:
    partner, secret = pull_partner
    feed = make_feed(partner=partner, name="verification", mode=Feed.Mode.PULL, gzip=compressed)
    batch = make_ready_batch(feed=feed, records=_records(4, occurred_at="2026-11-24T23:30:00Z"))
    store = BatchStore(data_dir=tmp_path, time_zone="Europe/London")
    puller = Puller(
        store=store,
        gateway_url=live_server.url,
        api_key=make_api_key(partner=partner),
        secret=secret,
    )

    assert puller.poll_once() == [str(batch.pk)]
    assert puller.poll_once() == []
    assert store.counts() == {("cmp-1", datetime(2026, 11, 24).date()): 4}


def test_the_puller_rejects_a_batch_signed_with_another_secret(
    pull_partner: tuple[Partner, str], live_server: Any, tmp_path: Path, secret: str
) -> None:
    partner, _real_secret = pull_partner
    feed = make_feed(partner=partner, name="verification", mode=Feed.Mode.PULL)
    make_ready_batch(feed=feed)
    puller = Puller(
        store=BatchStore(data_dir=tmp_path),
        gateway_url=live_server.url,
        api_key=make_api_key(partner=partner),
        secret=secret,
    )

    assert puller.poll_once() == []


def test_the_reporter_posts_reports_the_real_api_stores(
    pull_partner: tuple[Partner, str], live_server: Any, tmp_path: Path
) -> None:
    partner, _secret = pull_partner
    yesterday = datetime.now(tz=UTC) - timedelta(days=1)
    store = BatchStore(data_dir=tmp_path, time_zone="Europe/London")
    store.add(
        batch_id="b1",
        body=b"",
        records=_records(100, occurred_at=yesterday.isoformat()),
        source="test",
    )
    reporter = Reporter(
        store=store,
        gateway_url=live_server.url,
        api_key=make_api_key(partner=partner),
        bias=-0.12,
    )

    reporter.report_once()
    reporter.report_once()  # re-posting replaces, never adds

    report = PartnerReport.objects.get(partner=partner)
    assert (report.campaign_id, report.metric, report.value) == ("cmp-1", "impressions", 88)
