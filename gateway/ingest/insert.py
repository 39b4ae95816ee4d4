"""Storing validated exposures: one INSERT per chunk that reports the rows it wrote.

On PostgreSQL each chunk is one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT
(event_id) DO NOTHING RETURNING event_id`` with one array parameter per column,
sent in binary. ``bulk_create`` cost about four times as much per row (see
docs/benchmarks.md): Django binds parameters on the client, so psycopg writes
every array as a text literal and escapes each quote of each JSON payload in
pure Python.

``RETURNING`` names only the rows this statement wrote, so a row another request
stored first, even one committed while we wait on its lock, is reported as not
inserted: the caller's duplicate count stays exact when requests race.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field

from gateway.ingest.models import Exposure

# 5 000 rows make a statement of about 4 MB of parameters: large enough that the
# round trip and planning are noise, small enough to bound the memory per statement.
CHUNK_ROWS = 5_000

# Columns copied from the record under the same name, after event_id.
_DIMENSIONS = (
    "event_type",
    "media_type",
    "content_type",
    "advertiser_id",
    "campaign_id",
    "line_item_id",
    "creative_id",
)

# The JSONField's encoder, so the payload is written as the ORM would write it,
# made once (json.dumps with any option makes an encoder at every call).
_PAYLOAD_ENCODER = (
    getattr(Exposure._meta.get_field("payload"), "encoder", None) or json.JSONEncoder
)(ensure_ascii=False)


def payload_text(record: Mapping[str, Any]) -> str:
    """The payload's JSON text as stored on PostgreSQL, where the column keeps it as written.

    Characters beyond ASCII are written as themselves, as jsonb would give them
    back, rather than as ``\\u`` escapes: every build reads this text, and its
    privacy filter copies plain strings as they are but must decode escaped
    ones. Validation has already refused what has no UTF-8 form (lone surrogates).
    """
    return _PAYLOAD_ENCODER.encode(record)


class ExposureRow(NamedTuple):
    """One validated record to store: its instant and the normalised record itself.

    The record gives the columns (``event_id`` and the dimensions) and is the payload.
    """

    occurred_at: datetime
    record: Mapping[str, Any]


def exposures_insert(*, rows: Sequence[ExposureRow], received_at: datetime) -> set[str]:
    """Store the ``rows`` whose event_id is not stored yet; return the event_ids inserted.

    A row whose event_id is already stored is left as it is, never overwritten.
    Runs in the caller's transaction (or its own when there is none), so a
    failure stores nothing of the batch.
    """
    using = router.db_for_write(Exposure)
    connection = connections[using]
    chunk_insert = _postgresql_insert if connection.vendor == "postgresql" else _portable_insert
    inserted: set[str] = set()
    # No savepoint: the caller's atomic block already makes the batch all or nothing.
    with transaction.atomic(using=using, savepoint=False):
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            inserted |= chunk_insert(connection, rows=chunk, received_at=received_at)
    return inserted


def _postgresql_insert(
    connection: BaseDatabaseWrapper, *, rows: Sequence[ExposureRow], received_at: datetime
) -> set[str]:
    records = [row.record for row in rows]
    params: list[Any] = [
        received_at,
        [record["event_id"] for record in records],
        [row.occurred_at for row in rows],
        *([record[name] for record in records] for name in _DIMENSIONS),
        # JSON text, checked by the server as it casts it to json; as jsonb, the
        # text measured a few per cent faster than psycopg's binary Jsonb
        # dumper, which calls back into Python per element.
        [payload_text(record) for record in records],
    ]
    with _binding_cursor(connection) as cursor:
        cursor.execute(_postgresql_sql(connection), params)
        return {event_id for (event_id,) in cursor.fetchall()}


def _postgresql_sql(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    meta = Exposure._meta
    event_id, occurred_at, received_at, payload = (
        quote(_column(name)) for name in ("event_id", "occurred_at", "received_at", "payload")
    )
    dimensions = [quote(_column(name)) for name in _DIMENSIONS]
    # The unnest() aliases are the column names, so the SELECT list reads as the INSERT's.
    return (
        f"INSERT INTO {quote(meta.db_table)} "
        f"({event_id}, {occurred_at}, {received_at}, {', '.join(dimensions)}, {payload}) "
        f"SELECT {event_id}, {occurred_at}, %b::timestamptz, {', '.join(dimensions)}, "
        f"{payload}::json "
        f"FROM unnest(%b::text[], %b::timestamptz[], {'%b::text[], ' * len(dimensions)}%b::text[])"
        f" AS u({event_id}, {occurred_at}, {', '.join(dimensions)}, {payload}) "
        f"ON CONFLICT ({event_id}) DO NOTHING "
        f"RETURNING {event_id}"
    )


def _column(name: str) -> str:
    """The database column of an Exposure field."""
    field = Exposure._meta.get_field(name)
    assert isinstance(field, Field)  # the model's own concrete fields
    return field.column


def _binding_cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """A Django cursor over a psycopg cursor that binds its parameters on the server.

    Django's own cursors bind on the client (unless OPTIONS has
    ``server_side_binding``, which would change every query of the project),
    and client binding cannot send binary parameters. The psycopg cursor is on
    Django's connection, so it is in the caller's transaction; Django's wrapper
    keeps its error translation, execute_wrappers and query logging.
    """
    connection.ensure_connection()
    connection.validate_thread_sharing()
    cursor = psycopg.Cursor(connection.connection)
    # Django wraps any DB-API cursor; its stubs ask for its own wrapper type.
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)  # type: ignore[arg-type]
    return connection.make_cursor(cursor)  # type: ignore[arg-type]


def _portable_insert(
    connection: BaseDatabaseWrapper, *, rows: Sequence[ExposureRow], received_at: datetime
) -> set[str]:
    """The same for other databases (SQLite for the demo): look up, then insert the rest.

    Exact on SQLite: it admits one writer at a time (the project opens its
    transactions IMMEDIATE), so no other request can store one of these
    event_ids between the query and the insert. On a database with concurrent
    writers a row stored by a racing request would be counted as inserted here;
    it would still be stored only once.
    """
    queryset = Exposure.objects.using(connection.alias)
    stored = set(
        queryset.filter(event_id__in=[row.record["event_id"] for row in rows]).values_list(
            "event_id", flat=True
        )
    )
    new = [
        Exposure(
            event_id=row.record["event_id"],
            occurred_at=row.occurred_at,
            received_at=received_at,
            payload=row.record,
            **{name: row.record[name] for name in _DIMENSIONS},
        )
        for row in rows
        if row.record["event_id"] not in stored
    ]
    # ignore_conflicts also drops a repeated event_id within ``rows``, as on PostgreSQL.
    queryset.bulk_create(new, ignore_conflicts=True)
    return {exposure.event_id for exposure in new}
