"""The reporter: counts, skewed by a bias, posted to the gateway's reports endpoint."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import responses

from gateway.simulator.periodic import Periodic
from gateway.simulator.reporter import REPORTS_PATH, Reporter, ReportError, report_rows
from gateway.simulator.server import PartnerSimulator
from gateway.simulator.store import BatchStore
from tests.simulator.conftest import event, push

GATEWAY = "http://127.0.0.1:8999"
REPORTS_URL = GATEWAY + REPORTS_PATH


def _store(tmp_path: Path, records: list[dict], *, time_zone: str = "UTC") -> BatchStore:
    store = BatchStore(data_dir=tmp_path, time_zone=time_zone)
    store.add(batch_id="b1", body=b"", records=records, source="test")
    return store


def test_report_rows_round_each_count_skewed_by_the_bias() -> None:
    counts = {("cmp-1", date(2026, 11, 24)): 100, ("cmp-2", date(2026, 11, 23)): 7}

    rows = report_rows(counts, bias=-0.12)

    assert rows == [
        {"campaign_id": "cmp-1", "date": "2026-11-24", "metric": "impressions", "value": 88},
        {"campaign_id": "cmp-2", "date": "2026-11-23", "metric": "impressions", "value": 6},
    ]


def test_report_rows_never_go_below_zero() -> None:
    assert report_rows({("c", date(2026, 1, 1)): 5}, bias=-2)[0]["value"] == 0


@responses.activate
def test_report_once_posts_the_counts_with_the_api_key(tmp_path: Path) -> None:
    store = _store(tmp_path, [event(event_id=str(n)) for n in range(200)])
    responses.post(REPORTS_URL, json={"created": 1, "updated": 0})

    result = Reporter(store=store, gateway_url=GATEWAY, api_key="mgk_k", bias=0.03).report_once()

    assert (result.rows, result.status) == (1, 200)
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == "Bearer mgk_k"
    assert json.loads(call.request.body) == [
        {"campaign_id": "cmp-1", "date": "2026-11-24", "metric": "impressions", "value": 206}
    ]


@responses.activate
def test_reporting_again_posts_the_full_running_totals(tmp_path: Path) -> None:
    store = _store(tmp_path, [event()])
    responses.post(REPORTS_URL, json={})
    reporter = Reporter(store=store, gateway_url=GATEWAY + "/", api_key="k")

    reporter.report_once()
    store.add(batch_id="b2", body=b"", records=[event(event_id="2")], source="test")
    reporter.report_once()

    assert json.loads(responses.calls[1].request.body)[0]["value"] == 2


def _funnel_store(tmp_path: Path) -> BatchStore:
    types = ["impression", "start", "first_quartile", "midpoint", "complete", "click"]
    return _store(tmp_path, [event(event_id=str(n), event_type=t) for n, t in enumerate(types)])


@responses.activate
def test_only_impression_events_are_reported_as_impressions_by_default(tmp_path: Path) -> None:
    responses.post(REPORTS_URL, json={})

    Reporter(store=_funnel_store(tmp_path), gateway_url=GATEWAY, api_key="k").report_once()

    assert json.loads(responses.calls[0].request.body) == [
        {"campaign_id": "cmp-1", "date": "2026-11-24", "metric": "impressions", "value": 1}
    ]


@responses.activate
def test_other_event_types_are_reported_when_asked(tmp_path: Path) -> None:
    store = _funnel_store(tmp_path)
    responses.post(REPORTS_URL, json={})

    Reporter(
        store=store, gateway_url=GATEWAY, api_key="k", event_types={"impression", "click"}
    ).report_once()
    Reporter(store=store, gateway_url=GATEWAY, api_key="k", event_types=None).report_once()

    assert [json.loads(c.request.body)[0]["value"] for c in responses.calls] == [2, 6]


@responses.activate
def test_days_after_today_in_the_partner_time_zone_wait_for_their_day(tmp_path: Path) -> None:
    tomorrow = (datetime.now(tz=UTC) + timedelta(days=1)).isoformat()
    store = _store(tmp_path, [event(event_id="1"), event(event_id="2", occurred_at=tomorrow)])
    responses.post(REPORTS_URL, json={})

    result = Reporter(store=store, gateway_url=GATEWAY, api_key="k").report_once()

    assert result.rows == 1
    assert json.loads(responses.calls[0].request.body)[0]["date"] == "2026-11-24"


@responses.activate
def test_many_campaign_days_are_sent_in_chunks_the_api_accepts(tmp_path: Path) -> None:
    records = [
        event(event_id=str(n), campaign_id=f"cmp-{n}", occurred_at="2026-01-01T12:00:00Z")
        for n in range(1200)
    ]
    responses.post(REPORTS_URL, json={})

    result = Reporter(
        store=_store(tmp_path, records), gateway_url=GATEWAY, api_key="k"
    ).report_once()

    assert result.rows == 1200
    assert [len(json.loads(c.request.body)) for c in responses.calls] == [500, 500, 200]


@responses.activate
def test_nothing_is_posted_before_anything_was_received(tmp_path: Path) -> None:
    result = Reporter(
        store=BatchStore(data_dir=tmp_path), gateway_url=GATEWAY, api_key="k"
    ).report_once()

    assert result.rows == 0
    assert len(responses.calls) == 0


@responses.activate
def test_a_refused_report_raises_with_the_gateways_answer(tmp_path: Path) -> None:
    responses.post(REPORTS_URL, status=401, json={"code": "invalid_credentials"})

    with pytest.raises(ReportError, match="401"):
        Reporter(store=_store(tmp_path, [event()]), gateway_url=GATEWAY, api_key="k").report_once()


@responses.activate
def test_the_reporter_reports_what_the_simulator_received(tmp_path: Path, secret: str) -> None:
    responses.post(REPORTS_URL, json={})
    with PartnerSimulator(data_dir=tmp_path, secret=secret, time_zone="America/New_York") as sim:
        # The push goes over real HTTP to the simulator; only the gateway is mocked.
        responses.add_passthru(sim.url)
        push(sim.url, secret, [event(event_id=str(n)) for n in range(50)])
        Reporter(store=sim.store, gateway_url=GATEWAY, api_key="k", bias=-0.12).report_once()

    report_call = next(c for c in responses.calls if c.request.url == REPORTS_URL)
    assert json.loads(report_call.request.body) == [
        {"campaign_id": "cmp-1", "date": "2026-11-24", "metric": "impressions", "value": 44}
    ]


def test_a_periodic_action_keeps_running_after_a_failure() -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("gateway still starting")

    loop = Periodic(name="test", interval=0.05, action=flaky).start()
    deadline = datetime.now(tz=UTC) + timedelta(seconds=3)
    while len(calls) < 3 and datetime.now(tz=UTC) < deadline:
        time.sleep(0.01)
    loop.stop()

    assert len(calls) >= 3


def test_a_periodic_loop_can_run_its_action_a_last_time_on_stop() -> None:
    calls: list[int] = []
    loop = Periodic(name="test", interval=60, action=lambda: calls.append(1)).start()

    loop.stop(run_last=True)

    assert calls == [1]
