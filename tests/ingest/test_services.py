"""Storing a batch: gateway.ingest.services.exposures_ingest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateway.ingest import services
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


def test_duplicates_are_found_with_one_query_and_rows_inserted_in_batches_of_1000() -> None:
    exposures_ingest(records=[exposure_payload(event_id="evt-known")], now=NOW)
    records = [exposure_payload() for _ in range(1500)] + [exposure_payload(event_id="evt-known")]

    with CaptureQueriesContext(connection) as queries:
        result = exposures_ingest(records=records, now=NOW)

    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements.count("SELECT") == 1
    assert statements.count("INSERT") == 2
    assert (result.accepted, result.duplicate) == (1500, 1)
    assert Exposure.objects.count() == 1501


def test_a_row_inserted_concurrently_after_the_duplicate_check_causes_no_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exposures_ingest(records=[exposure_payload(event_id="evt-race")], now=NOW)
    # As if another request stored evt-race between our check and our insert.
    monkeypatch.setattr(services, "_event_ids_stored", lambda event_ids: set())

    result = exposures_ingest(records=[exposure_payload(event_id="evt-race")], now=NOW)

    assert result.rejected == 0
    assert Exposure.objects.filter(event_id="evt-race").count() == 1
