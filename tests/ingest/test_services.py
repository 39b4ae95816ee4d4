"""Storing a batch: gateway.ingest.services.exposures_ingest."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from gateway.ingest import insert
from gateway.ingest.models import Exposure
from gateway.ingest.services import exposures_ingest
from tests.factories import exposure_payload

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_valid_records_are_stored_with_their_columns_and_the_normalised_payload() -> None:
    record = exposure_payload(event_type="midpoint", media_type="video", content_type="video")

    result = exposures_ingest(records=[record], now=NOW)

    assert (result.accepted, result.duplicate, result.rejected, result.errors) == (1, 0, 0, [])
    exposure = Exposure.objects.get()
    assert exposure.event_id == record["event_id"]
    assert exposure.occurred_at == datetime(2026, 11, 24, 9, 15, tzinfo=UTC)
    assert exposure.received_at == NOW
    assert (exposure.event_type, exposure.media_type, exposure.content_type) == (
        "midpoint",
        "video",
        "video",
    )
    assert (
        exposure.advertiser_id,
        exposure.campaign_id,
        exposure.line_item_id,
        exposure.creative_id,
    ) == ("adv-1", "cmp-1", "li-1", "cr-1")
    assert exposure.payload == {**record, "occurred_at": "2026-11-24T09:15:00Z"}


def test_a_repeated_event_id_within_a_batch_is_a_duplicate_and_the_first_copy_wins() -> None:
    first = exposure_payload(event_id="evt-same", campaign_id="cmp-first")
    second = exposure_payload(event_id="evt-same", campaign_id="cmp-second")

    result = exposures_ingest(records=[first, second, dict(first)], now=NOW)

    assert (result.accepted, result.duplicate, result.rejected) == (1, 2, 0)
    assert Exposure.objects.get().campaign_id == "cmp-first"


def test_an_event_id_already_stored_is_a_duplicate_and_is_not_overwritten() -> None:
    exposures_ingest(records=[exposure_payload(event_id="evt-old", campaign_id="cmp-a")], now=NOW)

    result = exposures_ingest(
        records=[exposure_payload(event_id="evt-old", campaign_id="cmp-b"), exposure_payload()],
        now=NOW,
    )

    assert (result.accepted, result.duplicate, result.rejected) == (1, 1, 0)
    assert Exposure.objects.get(event_id="evt-old").campaign_id == "cmp-a"
    assert Exposure.objects.count() == 2


def test_invalid_records_are_reported_and_the_valid_ones_are_still_stored() -> None:
    good = exposure_payload()
    bad = exposure_payload(event_type="view")

    result = exposures_ingest(records=[bad, good, "not an object"], now=NOW)

    assert (result.accepted, result.duplicate, result.rejected) == (1, 0, 2)
    assert [(e.index, e.event_id) for e in result.errors] == [(0, bad["event_id"]), (2, None)]
    assert result.errors[0].problems[0]["code"] == "invalid_choice"
    assert list(Exposure.objects.values_list("event_id", flat=True)) == [good["event_id"]]


def test_a_rejected_record_does_not_claim_its_event_id() -> None:
    bad = exposure_payload(event_id="evt-x", ip="nope")
    good = exposure_payload(event_id="evt-x")

    result = exposures_ingest(records=[bad, good], now=NOW)

    assert (result.accepted, result.duplicate, result.rejected) == (1, 0, 1)


def test_a_batch_of_only_invalid_records_stores_nothing() -> None:
    result = exposures_ingest(records=[{}, []], now=NOW)

    assert (result.accepted, result.duplicate, result.rejected) == (0, 0, 2)
    assert not Exposure.objects.exists()


def test_the_result_serialises_to_the_api_shape() -> None:
    result = exposures_ingest(records=[exposure_payload(), {"event_id": "e1"}], now=NOW)

    body = result.as_json()

    assert (body["accepted"], body["duplicate"], body["rejected"]) == (1, 0, 1)
    [error] = body["errors"]
    assert (error["index"], error["event_id"]) == (1, "e1")
    assert {"field": "occurred_at", "code": "required", "detail": "is required"} in error[
        "problems"
    ]


def test_a_payload_with_quotes_and_unicode_is_stored_exactly_as_normalised() -> None:
    awkward = 'Say "hi" \'there\' \\ {"not": "json"} \\u0041 Zürich 東京 🎧'
    record = exposure_payload(
        event_id='evt-"ü"-🎧',
        user_agent=awkward,
        geo={"country": "CH", "city": awkward, "lat": 47.37174, "lon": 8.54226},
    )

    result = exposures_ingest(records=[record], now=NOW)

    assert result.accepted == 1
    exposure = Exposure.objects.get()
    assert exposure.event_id == 'evt-"ü"-🎧'
    assert exposure.payload == {**record, "occurred_at": "2026-11-24T09:15:00Z"}


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="one INSERT per chunk is PostgreSQL's"
)
def test_the_batch_is_stored_with_one_insert_per_chunk_and_no_duplicate_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exposures_ingest(records=[exposure_payload(event_id="evt-known")], now=NOW)
    monkeypatch.setattr(insert, "CHUNK_ROWS", 1000)
    records = [exposure_payload() for _ in range(1500)] + [exposure_payload(event_id="evt-known")]

    with CaptureQueriesContext(connection) as queries:
        result = exposures_ingest(records=records, now=NOW)

    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements.count("SELECT") == 0
    assert statements.count("INSERT") == 2
    assert (result.accepted, result.duplicate) == (1500, 1)
    assert Exposure.objects.count() == 1501


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite admits one writer at a time")
@pytest.mark.django_db(transaction=True)
def test_an_event_id_stored_by_a_racing_request_is_a_duplicate_not_accepted() -> None:
    outcome: dict[str, Any] = {}

    def racing_request() -> None:
        try:
            outcome["result"] = exposures_ingest(
                records=[exposure_payload(event_id="evt-race"), exposure_payload()], now=NOW
            )
        except BaseException as exc:  # re-raised in the test's thread below
            outcome["error"] = exc
        finally:
            connections.close_all()  # this thread's connection, or the test database stays busy

    # The first request has stored evt-race but not committed when the second
    # one inserts it: the second waits on the first's row and, once the first
    # commits, finds it taken. A check for stored ids before the insert could
    # not see the uncommitted row and would have counted evt-race as accepted.
    with transaction.atomic():
        first = exposures_ingest(records=[exposure_payload(event_id="evt-race")], now=NOW)
        thread = threading.Thread(target=racing_request)
        thread.start()
        _wait_for_a_lock_wait()
    thread.join(timeout=10)

    assert "error" not in outcome, outcome.get("error")
    assert (first.accepted, first.duplicate) == (1, 0)
    second = outcome["result"]
    assert (second.accepted, second.duplicate, second.rejected) == (1, 1, 0)
    assert Exposure.objects.filter(event_id="evt-race").count() == 1
    assert Exposure.objects.count() == 2


def _wait_for_a_lock_wait(timeout: float = 10.0) -> None:
    """Return once a session of the test database waits on a lock: the racing insert."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Within a transaction the activity view is a snapshot unless cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    pytest.fail("the racing request never waited on the first one's row")
