"""The Parquet writer: a schema from the feed, nested records flattened, read back with pyarrow."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway.delivery.body import Body
from gateway.filedrop import parquet
from gateway.filedrop.parquet import (
    EXPOSURE_COLUMN_TYPES,
    ParquetBodyWriter,
    ParquetSchemaError,
    aggregate_columns,
    event_columns,
    flatten,
)
from gateway.ingest.validation import exposure_validate
from tests.factories import exposure_payload

ALLOWLIST = ["event_id", "occurred_at", "campaign_id", "geo", "device.lmt", "user_id"]


def written(columns: tuple[parquet.Column, ...], records: list[dict[str, Any]], **kw: Any) -> Body:
    writer = ParquetBodyWriter(columns=columns, **kw)
    for record in records:
        writer.write(record)
    return writer.finish()


def read_back(body: Body) -> pa.Table:
    with closing(body):
        return pq.read_table(body.file)


def test_the_schema_has_every_allowlisted_column_in_contract_order():
    names = [column.name for column in event_columns(ALLOWLIST)]

    assert names == [
        "event_id",
        "occurred_at",
        "campaign_id",
        "device.lmt",
        "geo.country",
        "geo.region",
        "geo.city",
        "geo.postal_code",
        "geo.lat",
        "geo.lon",
        "user_id",
        # A pseudonym key rotation adds it to some batches: the column is always there.
        "user_id_previous",
    ]


def test_nested_records_are_flattened_to_dotted_typed_columns_and_missing_values_are_null():
    records = [
        {
            "event_id": "evt-1",
            "occurred_at": "2026-11-24T09:15:00Z",
            "campaign_id": "cmp-1",
            "device": {"lmt": False},
            "geo": {"country": "DE", "lat": 52.52, "lon": 13},
            "user_id": "ps-1",
        },
        {"event_id": "evt-2", "occurred_at": "2026-11-24T10:15:00+01:00", "geo": {"country": "FR"}},
    ]

    table = read_back(written(event_columns(ALLOWLIST), records))

    assert table.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("geo.lat").type == pa.float64()
    assert table.schema.field("device.lmt").type == pa.bool_()
    rows = table.to_pylist()
    assert rows[0]["geo.country"] == "DE"
    assert rows[0]["geo.lon"] == 13.0
    assert rows[0]["device.lmt"] is False
    assert rows[1]["occurred_at"] == datetime(2026, 11, 24, 9, 15, tzinfo=UTC)
    assert rows[1]["campaign_id"] is None
    assert rows[1]["geo.lat"] is None
    assert rows[1]["user_id_previous"] is None


def test_two_batches_of_one_feed_have_identical_schemas_whatever_their_records_hold():
    columns = event_columns(ALLOWLIST)

    sparse = read_back(written(columns, [{"event_id": "evt-1"}]))
    full = read_back(
        written(columns, [{"event_id": "evt-2", "geo": {"country": "US", "city": "Oakland"}}])
    )
    empty = read_back(written(columns, []))

    assert sparse.schema == full.schema == empty.schema
    assert empty.num_rows == 0


def test_rows_are_written_in_row_groups_so_memory_stays_bounded():
    records = [{"event_id": f"evt-{n}"} for n in range(25)]

    body = written(event_columns(["event_id"]), records, row_group_rows=10)

    with closing(body):
        metadata = pq.ParquetFile(body.file).metadata
        assert metadata.num_row_groups == 3
        assert metadata.num_rows == 25
    assert body.records == 25


def test_a_full_file_refuses_a_record_and_writes_nothing_of_it():
    writer = ParquetBodyWriter(columns=event_columns(ALLOWLIST), max_records=2)

    taken = [writer.write({"event_id": f"evt-{n}"}) for n in range(3)]

    assert taken == [True, True, False]
    assert read_back(writer.finish()).column("event_id").to_pylist() == ["evt-0", "evt-1"]


def test_the_body_hash_and_size_are_those_of_the_parquet_file():
    import hashlib

    body = written(event_columns(["event_id"]), [{"event_id": "evt-1"}])

    with closing(body):
        content = body.file.read()
    assert content.startswith(b"PAR1") and content.endswith(b"PAR1")
    assert body.sha256 == hashlib.sha256(content).hexdigest()
    assert body.uncompressed_bytes == len(content)


def test_aggregate_rows_keep_their_dimension_names_and_integer_counts():
    columns = aggregate_columns(["campaign_id", "geo.country"])
    rows = [{"campaign_id": "cmp-1", "geo.country": "DE", "events": 120, "users": 80}]

    table = read_back(written(columns, rows))

    assert table.column_names == ["campaign_id", "geo.country", "events", "users"]
    assert table.schema.field("events").type == pa.int64()
    assert table.to_pylist() == rows


def test_a_field_outside_the_schema_fails_the_build_instead_of_disappearing():
    writer = ParquetBodyWriter(columns=event_columns(["event_id"]))

    with pytest.raises(ParquetSchemaError, match="campaign_id"):
        writer.write({"event_id": "evt-1", "campaign_id": "cmp-1"})


def test_an_allowlisted_path_the_contract_does_not_know_is_a_string_column():
    columns = event_columns(["event_id", "custom.thing"])

    assert columns[-1] == parquet.Column("custom.thing", pa.string())


def test_an_empty_allowlist_is_refused():
    with pytest.raises(ParquetSchemaError):
        event_columns([])


def test_every_field_of_the_ingest_contract_has_a_typed_column():
    # Guards the type table against the contract growing without it.
    checked = exposure_validate(
        record=exposure_payload(
            device={"type": "mobile", "os": "ios", "ifa": "ifa-1", "lmt": False, "atts": 3},
            consent={
                "gdpr": 1,
                "tcf": "CP",
                "gpp": "DB",
                "gpp_sid": [7],
                "us_privacy": "1YNN",
                "gpc": False,
                "coppa": False,
            },
        ),
        now=datetime(2026, 11, 24, 12, tzinfo=UTC),
    )
    assert checked.record is not None, checked.problems

    assert set(flatten(checked.record)) <= set(EXPOSURE_COLUMN_TYPES)
