"""Storing validated rows: gateway.ingest.insert.exposures_insert."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from gateway.ingest import insert
from gateway.ingest.insert import exposures_insert
from gateway.ingest.models import Exposure
from tests.ingest.builders import OCCURRED, exposure_row

pytestmark = pytest.mark.django_db

RECEIVED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POSTGRESQL = connection.vendor == "postgresql"

# Quotes, backslashes, JSON escapes spelled out as text, characters outside the
# BMP, and numbers whose text form must not drift: everything a text-format
# array literal or a hand-rolled escaper could get wrong.
AWKWARD = 'Say "hi" \'there\' \\ back\\slash {"not": "json"} \\u0041 Zürich 東京 🎧 \u2028'


@pytest.fixture(params=["native", "portable"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through the database's own path, then through the portable one.

    On PostgreSQL this covers the SQLite fallback too; on SQLite both are the fallback.
    """
    if request.param == "portable":
        monkeypatch.setattr(insert, "_postgresql_insert", insert._portable_insert)
    return str(request.param)


@pytest.mark.usefixtures("implementation")
def test_it_stores_every_row_with_its_columns_and_returns_their_event_ids() -> None:
    rows = [exposure_row("evt-1", campaign_id="cmp-9"), exposure_row("evt-2", event_type="click")]

    inserted = exposures_insert(rows=rows, received_at=RECEIVED)

    assert inserted == {"evt-1", "evt-2"}
    first = Exposure.objects.get(event_id="evt-1")
    assert (first.occurred_at, first.received_at, first.campaign_id) == (
        OCCURRED,
        RECEIVED,
        "cmp-9",
    )
    assert first.payload == rows[0].record
    assert Exposure.objects.get(event_id="evt-2").event_type == "click"


@pytest.mark.usefixtures("implementation")
def test_an_event_id_already_stored_is_not_returned_and_not_overwritten() -> None:
    exposures_insert(rows=[exposure_row("evt-old", campaign_id="cmp-a")], received_at=RECEIVED)

    inserted = exposures_insert(
        rows=[exposure_row("evt-old", campaign_id="cmp-b"), exposure_row("evt-new")],
        received_at=RECEIVED,
    )

    assert inserted == {"evt-new"}
    assert Exposure.objects.get(event_id="evt-old").campaign_id == "cmp-a"


@pytest.mark.usefixtures("implementation")
def test_the_payload_and_columns_round_trip_exactly_with_quotes_and_unicode() -> None:
    event_id = 'evt-"quoted"-\\-ü-🎧'
    row = exposure_row(
        event_id,
        campaign_id='cmp-"1"-ü',
        user_agent=AWKWARD,
        geo={"city": AWKWARD, "lat": 37.80437, "lon": -0.1, "big": 2**53 + 1},
        tags=["", " ", "\t\n", AWKWARD],
        consent={"gdpr": None, "gpc": False, "coppa": True},
    )

    assert exposures_insert(rows=[row], received_at=RECEIVED) == {event_id}

    stored = Exposure.objects.get()
    assert stored.payload == row.record
    assert (stored.event_id, stored.campaign_id) == (event_id, 'cmp-"1"-ü')


@pytest.mark.usefixtures("implementation")
def test_rows_are_stored_across_chunks_and_a_repeat_within_the_rows_is_stored_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(insert, "CHUNK_ROWS", 2)
    exposures_insert(rows=[exposure_row("evt-3")], received_at=RECEIVED)
    rows = [exposure_row(f"evt-{n}") for n in range(1, 6)] + [
        exposure_row("evt-1", campaign_id="cmp-late")
    ]

    inserted = exposures_insert(rows=rows, received_at=RECEIVED)

    assert inserted == {"evt-1", "evt-2", "evt-4", "evt-5"}
    assert Exposure.objects.count() == 5
    assert Exposure.objects.get(event_id="evt-1").campaign_id == "cmp-1"


@pytest.mark.usefixtures("implementation")
def test_it_writes_in_the_callers_transaction() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        exposures_insert(rows=[exposure_row("evt-1")], received_at=RECEIVED)
        raise RuntimeError("the caller fails after the insert")

    assert not Exposure.objects.exists()


def test_no_rows_is_no_query() -> None:
    with CaptureQueriesContext(connection) as queries:
        assert exposures_insert(rows=[], received_at=RECEIVED) == set()

    assert [q["sql"] for q in queries.captured_queries] == []


@pytest.mark.skipif(not POSTGRESQL, reason="the single-statement insert is PostgreSQL's")
def test_on_postgresql_each_chunk_is_one_insert_with_no_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(insert, "CHUNK_ROWS", 1000)
    rows = [exposure_row(f"evt-{n}") for n in range(2500)]

    with CaptureQueriesContext(connection) as queries:
        inserted = exposures_insert(rows=rows, received_at=RECEIVED)

    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements == ["INSERT"] * 3
    assert len(inserted) == 2500
