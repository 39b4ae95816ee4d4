"""The exposure payload column: PostgreSQL json, holding the text the ingest wrote."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from django.db import connection

from gateway.ingest.insert import exposures_insert, payload_text
from gateway.ingest.models import Exposure
from tests.ingest.builders import OCCURRED, exposure_row
from tests.sqlite_child import run_on_fresh_sqlite

pytestmark = pytest.mark.django_db

ROW = exposure_row(
    "evt-1",
    ua='Zürich "radio" 東京 🎧\t\\',
    geo={"lat": 37.80437, "lon": -0.1, "big": 2**53 + 1},
    consent={"gdpr": None, "gpc": False},
)
RECORD = ROW.record


def _stored_text(event_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload::text FROM ingest_exposure WHERE event_id = %s", [event_id])
        return str(cursor.fetchone()[0])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the json column is PostgreSQL's")
def test_the_column_is_json_and_keeps_the_text_the_ingest_wrote() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_name = 'ingest_exposure' AND column_name = 'payload'"
        )
        assert cursor.fetchone() == ("json",)

    exposures_insert(rows=[ROW], received_at=OCCURRED)

    text = _stored_text("evt-1")
    assert text == payload_text(RECORD)
    # Beyond ASCII as itself (what the build's byte path copies as it is), control
    # characters and quotes escaped: the same string, and the same record.
    assert 'Zürich \\"radio\\" 東京 🎧\\t\\\\' in text
    assert orjson.loads(text) == RECORD


def test_the_orm_reads_the_payload_back_as_written() -> None:
    exposures_insert(rows=[ROW], received_at=OCCURRED)
    Exposure.objects.create(
        event_id="evt-orm",
        occurred_at=OCCURRED,
        event_type="click",
        media_type="video",
        content_type="episode",
        advertiser_id="adv-2",
        campaign_id="cmp-2",
        line_item_id="li-2",
        creative_id="cr-2",
        payload={**RECORD, "event_id": "evt-orm"},
    )

    assert Exposure.objects.get(event_id="evt-1").payload == RECORD
    assert Exposure.objects.get(event_id="evt-orm").payload == {**RECORD, "event_id": "evt-orm"}
    read = Exposure.objects.order_by("event_id").values_list("payload__geo__lat", "payload__ua")
    assert list(read) == [(37.80437, RECORD["ua"])] * 2
    assert orjson.loads(_stored_text("evt-orm")) == {**RECORD, "event_id": "evt-orm"}


def test_a_string_that_looks_like_json_is_read_as_the_string_it_is() -> None:
    """Decoded once: by the field, never by psycopg as well."""
    row = exposure_row(**{**RECORD, "line_item_id": "123", "creative_id": "[1]", "ua": "null"})
    exposures_insert(rows=[row], received_at=OCCURRED)

    stored = Exposure.objects.values_list(
        "payload__line_item_id", "payload__creative_id", "payload__ua", "payload"
    ).get()

    assert stored == ("123", "[1]", "null", row.record)


# Run in a child on a fresh SQLite database (the demo's): migrated from
# scratch, an exposure stored by the ingest path gets its commit_seq from
# the trigger of migration 0002, which a later migration remaking the table
# would drop (and with it every claim of the demo's builds).
SQLITE_CHILD = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from gateway.ingest.insert import exposures_insert
from gateway.ingest.models import Exposure
from tests.ingest.builders import exposure_row
row = exposure_row("evt-1", ua="Zürich")
exposures_insert(rows=[row], received_at=row.occurred_at)
stored = Exposure.objects.get()
assert stored.commit_seq == stored.id, (stored.commit_seq, stored.id)
assert stored.payload == row.record, stored.payload
print("stored with its commit_seq")
"""


def test_on_a_migrated_sqlite_database_stored_exposures_get_their_commit_seq(
    tmp_path: Path,
) -> None:
    child = run_on_fresh_sqlite(["-c", SQLITE_CHILD], database=tmp_path / "db.sqlite3")

    assert child.returncode == 0, child.stderr[-3000:]
    assert "stored with its commit_seq" in child.stdout
