"""The exposure payload column: PostgreSQL json, holding the text the ingest wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.db import connection

from gateway.ingest.insert import ExposureRow, exposures_insert, payload_text
from gateway.ingest.models import Exposure

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

OCCURRED = datetime(2026, 11, 24, 9, 15, tzinfo=UTC)
RECORD: dict[str, Any] = {
    "event_id": "evt-1",
    "occurred_at": "2026-11-24T09:15:00Z",
    "event_type": "impression",
    "media_type": "audio",
    "content_type": "podcast",
    "advertiser_id": "adv-1",
    "campaign_id": "cmp-1",
    "line_item_id": "li-1",
    "creative_id": "cr-1",
    "ua": 'Zürich "radio" 東京 🎧\t\\',
    "geo": {"lat": 37.80437, "lon": -0.1, "big": 2**53 + 1},
    "consent": {"gdpr": None, "gpc": False},
}


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

    exposures_insert(rows=[ExposureRow(OCCURRED, RECORD)], received_at=OCCURRED)

    text = _stored_text("evt-1")
    assert text == payload_text(RECORD)
    # Beyond ASCII as itself (what the build's byte path copies as it is), control
    # characters and quotes escaped: the same string, and the same record.
    assert 'Zürich \\"radio\\" 東京 🎧\\t\\\\' in text
    assert orjson.loads(text) == RECORD


def test_the_orm_reads_the_payload_back_as_written() -> None:
    exposures_insert(rows=[ExposureRow(OCCURRED, RECORD)], received_at=OCCURRED)
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
    record = {**RECORD, "line_item_id": "123", "creative_id": "[1]", "ua": "null"}
    exposures_insert(rows=[ExposureRow(OCCURRED, record)], received_at=OCCURRED)

    stored = Exposure.objects.values_list(
        "payload__line_item_id", "payload__creative_id", "payload__ua", "payload"
    ).get()

    assert stored == ("123", "[1]", "null", record)


# Run in a child on a fresh SQLite database (the demo's): migrated from
# scratch, an exposure stored by the ingest path gets its commit_seq from
# the trigger of migration 0002, which a later migration remaking the table
# would drop (and with it every claim of the demo's builds).
SQLITE_CHILD = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from datetime import UTC, datetime
from gateway.ingest.insert import ExposureRow, exposures_insert
from gateway.ingest.models import Exposure
record = {"event_id": "evt-1", "occurred_at": "2026-11-24T09:15:00Z", "event_type": "impression",
          "media_type": "audio", "content_type": "podcast", "advertiser_id": "adv-1",
          "campaign_id": "cmp-1", "line_item_id": "li-1", "creative_id": "cr-1", "ua": "Zürich"}
at = datetime(2026, 11, 24, 9, 15, tzinfo=UTC)
exposures_insert(rows=[ExposureRow(at, record)], received_at=at)
stored = Exposure.objects.get()
assert stored.commit_seq == stored.id, (stored.commit_seq, stored.id)
assert stored.payload == record, stored.payload
print("stored with its commit_seq")
"""


def test_on_a_migrated_sqlite_database_stored_exposures_get_their_commit_seq(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "GATEWAY_VAR_DIR": str(tmp_path),
    }
    child = subprocess.run(
        [sys.executable, "-c", SQLITE_CHILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert "stored with its commit_seq" in child.stdout
