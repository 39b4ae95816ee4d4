"""The send path's reads and writes, as SQL made once from the models' metadata.

A push send runs the same few statements every time: load the batch with its
feed, its partner and the partner's signing keys, claim it, insert the
attempt row, write the outcome to the attempt and to the batch. Through the
ORM, compiling those statements again at every send costs more than running
them, and PostgreSQL planning them again at every send about as much again:
together about half the bookkeeping around a POST (docs/benchmarks.md, fifth
session of 2026-12-07), an overhead every partner's every batch would pay.

Here each statement's SQL is made once per database connection from
``Model._meta`` (tables, columns, quoting), so a new field or a renamed
column needs no edit here, and is kept; on PostgreSQL it is prepared on
the server at its first run (``_executed``). Values reach the database through
each field's ``get_db_prep_value``/``get_db_prep_save`` and rows come back
through the backend's and the field's converters, as the ORM does it, so the
same code runs on PostgreSQL and on the demo's SQLite, on Django's
connection and inside Django's transactions.

Writes have the semantics of ``QuerySet.update`` and of a bare INSERT: no
``pre_save``/``post_save`` signals (none of the models written here has a
receiver, and ``tests/delivery/test_statements.py`` keeps it so), and an
update writes exactly the values it is given.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from django.db.models.expressions import Col
from django.db.models.fields import AutoFieldMixin

from gateway.delivery.models import Batch
from partners.models import Feed, Partner, SigningSecret

ModelT = TypeVar("ModelT", bound=Model)

# Each thread has its own connection object: what was made for it, by statement.
_made: weakref.WeakKeyDictionary[BaseDatabaseWrapper, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


def _made_for(
    conn: BaseDatabaseWrapper, key: tuple[Any, ...], make: Callable[[BaseDatabaseWrapper], Any]
) -> Any:
    """What ``make`` builds for ``conn``, built the first time only."""
    made = _made.setdefault(conn, {})
    if key not in made:
        made[key] = make(conn)
    return made[key]


@contextmanager
def _executed(conn: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> Iterator[Any]:
    """A cursor that has run ``sql``: on PostgreSQL a prepared statement, planned once.

    Django's PostgreSQL cursors bind parameters client-side, so the server
    plans every statement anew: a quarter of a millisecond for the send's
    load, at every send. A server-side binding cursor on the same connection
    (so inside the same transactions) prepares each statement the first time
    and reuses its plan. These statements do not pass Django's execute
    wrappers, so they are not in ``connection.queries``; errors are Django's,
    as from any cursor.
    """
    if conn.vendor != "postgresql":
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            yield cursor
        return
    conn.ensure_connection()
    with conn.wrap_database_errors, psycopg.Cursor(conn.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        yield cursor


def _execute(conn: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> int:
    """Run ``sql`` as ``_executed`` does; returns the rows it changed."""
    with _executed(conn, sql, params) as cursor:
        return int(cursor.rowcount)


# --- Reading rows into instances ----------------------------------------------------------


@dataclass(frozen=True)
class _Converted:
    """The converters of one column of a row, and the expression they are called with."""

    position: int
    converters: tuple[Callable[..., Any], ...]
    expression: Col


@dataclass(frozen=True)
class _ModelColumns:
    """One model's columns in a SELECT list, from ``start``, and how to make its instance."""

    model: type[Model]
    sql: str
    start: int
    attnames: tuple[str, ...]
    converted: tuple[_Converted, ...]

    @property
    def end(self) -> int:
        return self.start + len(self.attnames)

    def instance(self, row: Sequence[Any], conn: BaseDatabaseWrapper) -> Model:
        values = list(row[self.start : self.end])
        for column in self.converted:
            value = values[column.position]
            for converter in column.converters:
                value = converter(value, column.expression, conn)
            values[column.position] = value
        return self.model.from_db(conn.alias, self.attnames, values)


def _converters(field: Field, alias: str, conn: BaseDatabaseWrapper) -> tuple[Col, tuple]:
    column = field.get_col(alias)
    return column, tuple(conn.ops.get_db_converters(column) + column.get_db_converters(conn))


def _model_columns(
    model: type[Model],
    *,
    alias: str,
    start: int,
    conn: BaseDatabaseWrapper,
    fields: Sequence[Field] | None = None,
) -> _ModelColumns:
    """Columns of ``fields`` (default: all concrete fields), the others deferred."""
    fields = model._meta.concrete_fields if fields is None else fields
    converted = []
    for position, field in enumerate(fields):
        column, converters = _converters(field, alias, conn)
        if converters:
            converted.append(_Converted(position, converters, column))
    quote = conn.ops.quote_name
    return _ModelColumns(
        model=model,
        sql=", ".join(f"{alias}.{quote(field.column)}" for field in fields),
        start=start,
        attnames=tuple(field.attname for field in fields),
        converted=tuple(converted),
    )


def _field(model: type[Model], name: str) -> Field:
    """``model``'s concrete field ``name`` ("pk" for the primary key)."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    assert isinstance(field, Field) and field.column, f"{model.__name__}.{name} has no column"
    return field


def _column(model: type[Model], name: str) -> str:
    """The database column of ``model``'s field ``name``."""
    column = _field(model, name).column
    assert column is not None
    return column


def _value_read(value: Any, field: Field, alias: str, conn: BaseDatabaseWrapper) -> Any:
    """``value`` of ``field`` as read, through its converters (looked up once per connection)."""
    column, converters = _made_for(
        conn, ("converters", field, alias), lambda conn: _converters(field, alias, conn)
    )
    for converter in converters:
        value = converter(value, column, conn)
    return value


# --- The batch a send loads ---------------------------------------------------------------


@dataclass(frozen=True)
class _BatchLoad:
    sql: str
    batch: _ModelColumns
    feed: _ModelColumns
    partner: _ModelColumns
    replaced: int  # the position of the replaced batch's id
    keys: _ModelColumns


# What the default signer reads of a key (partners.services.signer_from_database),
# which reads them here when they did not come with the batch.
SIGNING_KEY_FIELDS = ("key_id", "secret_encrypted", "activates_at", "retires_at", "revoked_at")


def _batch_load_make(conn: BaseDatabaseWrapper) -> _BatchLoad:
    quote = conn.ops.quote_name
    batch = _model_columns(Batch, alias="b", start=0, conn=conn)
    feed = _model_columns(Feed, alias="f", start=batch.end, conn=conn)
    partner = _model_columns(Partner, alias="p", start=feed.end, conn=conn)
    keys = _model_columns(
        SigningSecret,
        alias="k",
        start=partner.end + 1,
        conn=conn,
        fields=[_field(SigningSecret, name) for name in ("pk", *SIGNING_KEY_FIELDS)],
    )

    def column(model: type[Model], name: str) -> str:
        return quote(_column(model, name))

    batch_table = quote(Batch._meta.db_table)
    # The batch an explicit re-build of this one replaced: the first part, if in parts.
    replaced = (
        f"(SELECT r.{column(Batch, 'id')} FROM {batch_table} r"
        f" WHERE r.{column(Batch, 'superseded_by')} = b.{column(Batch, 'id')}"
        f" ORDER BY r.{column(Batch, 'part')} LIMIT 1)"
    )
    # One row per unrevoked signing key of the partner (one row of NULLs when it
    # has none), newest first as the signer orders them: the keys come with the
    # batch instead of in a round trip of their own, at every send.
    sql = (
        f"SELECT {batch.sql}, {feed.sql}, {partner.sql}, {replaced}, {keys.sql}"
        f" FROM {batch_table} b"
        f" JOIN {quote(Feed._meta.db_table)} f"
        f" ON f.{column(Feed, 'id')} = b.{column(Batch, 'feed')}"
        f" JOIN {quote(Partner._meta.db_table)} p"
        f" ON p.{column(Partner, 'id')} = f.{column(Feed, 'partner')}"
        f" LEFT JOIN {quote(SigningSecret._meta.db_table)} k"
        f" ON k.{column(SigningSecret, 'partner')} = p.{column(Partner, 'id')}"
        f" AND k.{column(SigningSecret, 'revoked_at')} IS NULL"
        f" WHERE b.{column(Batch, 'id')} = %s"
        f" ORDER BY k.{column(SigningSecret, 'created_at')} DESC,"
        f" k.{column(SigningSecret, 'id')} DESC"
    )
    return _BatchLoad(
        sql=sql, batch=batch, feed=feed, partner=partner, replaced=partner.end, keys=keys
    )


def batch_for_send(batch_id: UUID | str) -> Batch | None:
    """The batch with its feed and its feed's partner, and ``replaced_id``; None if gone.

    ``replaced_id`` is the batch an explicit re-build of this one replaced
    (the first part, when that claim was delivered in parts), or None. The
    partner comes with its ``unrevoked_signing_keys``, for the attempt's signer.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    load: _BatchLoad = _made_for(conn, ("batch_for_send",), _batch_load_make)
    id_field = Batch._meta.pk
    assert id_field is not None
    with _executed(conn, load.sql, [id_field.get_db_prep_value(batch_id, conn)]) as cursor:
        rows = cursor.fetchall()
    if not rows:
        return None
    row = rows[0]
    batch = cast(Batch, load.batch.instance(row, conn))
    feed = cast(Feed, load.feed.instance(row, conn))
    partner = cast(Partner, load.partner.instance(row, conn))
    partner.unrevoked_signing_keys = [
        cast(SigningSecret, load.keys.instance(key_row, conn))
        for key_row in rows
        if key_row[load.keys.start] is not None
    ]
    feed.partner = partner
    batch.feed = feed
    batch.replaced_id = _value_read(row[load.replaced], id_field, "r", conn)  # type: ignore[attr-defined]
    return batch


# --- Reading rows of one model -----------------------------------------------------------


def rows_read(
    model: type[ModelT],
    fields: Sequence[str],
    *,
    where: Mapping[str, Any],
    order_by: Sequence[str] = (),
) -> list[ModelT]:
    """``list(model.objects.filter(**where).order_by(*order_by).only(*fields))``, made once.

    ``where`` maps field names to values (None: IS NULL), ``order_by`` names
    fields, "-" first for descending. The primary key is always read; other
    fields are deferred, as with ``only``.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    key = ("read", model, tuple(fields), _conditions_key(where), tuple(order_by))
    read: _RowsRead = _made_for(
        conn, key, lambda conn: _rows_read_make(model, fields, where, order_by, conn)
    )
    with _executed(conn, read.sql, _conditions_params(model, where, conn)) as cursor:
        rows = cursor.fetchall()
    return [cast(ModelT, read.columns.instance(row, conn)) for row in rows]


@dataclass(frozen=True)
class _RowsRead:
    sql: str
    columns: _ModelColumns


def _rows_read_make(
    model: type[Model],
    fields: Sequence[str],
    where: Mapping[str, Any],
    order_by: Sequence[str],
    conn: BaseDatabaseWrapper,
) -> _RowsRead:
    quote = conn.ops.quote_name
    wanted = {_field(model, name) for name in fields}
    # In the model's order, as ``Model.from_db`` takes a subset of fields.
    read = [field for field in model._meta.concrete_fields if field.primary_key or field in wanted]
    columns = _model_columns(
        model, alias=quote(model._meta.db_table), start=0, conn=conn, fields=read
    )
    order = ", ".join(
        f"{quote(_column(model, name.removeprefix('-')))}{' DESC' * name.startswith('-')}"
        for name in order_by
    )
    sql = (
        f"SELECT {columns.sql} FROM {quote(model._meta.db_table)}"
        f" WHERE {_conditions_sql(model, where, conn)}" + (f" ORDER BY {order}" if order else "")
    )
    return _RowsRead(sql=sql, columns=columns)


# --- Writing ------------------------------------------------------------------------------


def _conditions_key(where: Mapping[str, Any]) -> tuple[tuple[str, bool], ...]:
    """What the SQL of ``where`` depends on: its names, and which values are None."""
    return tuple((name, value is None) for name, value in where.items())


def _conditions_sql(model: type[Model], where: Mapping[str, Any], conn: BaseDatabaseWrapper) -> str:
    """``where`` (field names to values, None meaning IS NULL) as ANDed SQL conditions."""
    quote = conn.ops.quote_name
    return " AND ".join(
        f"{quote(_column(model, name))} IS NULL"
        if value is None
        else f"{quote(_column(model, name))} = %s"
        for name, value in where.items()
    )


def _conditions_params(
    model: type[Model], where: Mapping[str, Any], conn: BaseDatabaseWrapper
) -> list[Any]:
    return [
        _field(model, name).get_db_prep_value(value, conn)
        for name, value in where.items()
        if value is not None
    ]


@dataclass(frozen=True)
class RowUpdate:
    """``model.objects.filter(pk=pk, **where).update(**values)``, by field names.

    A None in ``where`` means IS NULL.
    """

    model: type[Model]
    pk: Any
    values: Mapping[str, Any]
    where: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def _where(self) -> dict[str, Any]:
        return {"pk": self.pk, **self.where}

    def sql(self, conn: BaseDatabaseWrapper) -> str:
        key = ("update", self.model, tuple(self.values), _conditions_key(self._where))
        return _made_for(conn, key, self._sql_make)

    def _sql_make(self, conn: BaseDatabaseWrapper) -> str:
        quote = conn.ops.quote_name
        assignments = ", ".join(f"{quote(_column(self.model, name))} = %s" for name in self.values)
        return (
            f"UPDATE {quote(self.model._meta.db_table)} SET {assignments}"
            f" WHERE {_conditions_sql(self.model, self._where, conn)}"
        )

    def params(self, conn: BaseDatabaseWrapper) -> list[Any]:
        values = [
            _field(self.model, name).get_db_prep_save(value, conn)
            for name, value in self.values.items()
        ]
        return values + _conditions_params(self.model, self._where, conn)


def row_update(update: RowUpdate) -> int:
    """Run ``update``; returns the rows updated: 0 when the row is gone or not as expected."""
    conn = connections[DEFAULT_DB_ALIAS]
    return _execute(conn, update.sql(conn), update.params(conn))


def rows_update(*updates: RowUpdate) -> None:
    """Run ``updates`` all or none: on PostgreSQL in one statement, elsewhere in a transaction.

    One statement (the first updates in a data-modifying WITH) is one round
    trip and needs no BEGIN and COMMIT of its own: a send's outcome is
    written in a third of the time a transaction of two statements takes.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    if not _writes_in_with(conn):
        with transaction.atomic():
            for update in updates:
                _execute(conn, update.sql(conn), update.params(conn))
        return
    *first, last = updates
    sql = "WITH " * bool(first) + ", ".join(
        f"u{index} AS ({update.sql(conn)})" for index, update in enumerate(first)
    )
    params = [param for update in updates for param in update.params(conn)]
    _execute(conn, f"{sql} {last.sql(conn)}", params)


def row_insert(instance: ModelT) -> ModelT:
    """Insert ``instance`` as a new row, like ``save()`` of a new instance but without signals.

    Every concrete field is written (through ``pre_save``, so ``auto_now_add``
    applies); a database-generated primary key comes back into ``instance``.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    insert = _insert(type(instance), conn)
    with _executed(conn, insert.sql, insert.params(instance, conn)) as cursor:
        insert.returned(instance, cursor.fetchone() if insert.returns else None, conn)
    return instance


def row_insert_if_updated(update: RowUpdate, instance: ModelT) -> ModelT | None:
    """``row_insert(instance)`` if ``update`` updates its row, all or nothing; else None.

    On PostgreSQL one statement (the update in a data-modifying WITH, the
    insert selecting from it), elsewhere a transaction.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    if not _writes_in_with(conn):
        with transaction.atomic():
            return row_insert(instance) if row_update(update) else None
    insert = _insert(type(instance), conn)
    sql = (
        f"WITH updated AS ({update.sql(conn)} RETURNING 1) "
        f"{insert.into_sql} SELECT {insert.cast_values_sql} FROM updated {insert.returning_sql}"
    )
    with _executed(conn, sql, update.params(conn) + insert.params(instance, conn)) as cursor:
        if cursor.rowcount == 0:
            return None
        insert.returned(instance, cursor.fetchone() if insert.returns else None, conn)
    return instance


def _writes_in_with(conn: BaseDatabaseWrapper) -> bool:
    """Whether the database takes INSERT/UPDATE in a WITH clause (PostgreSQL; not SQLite)."""
    return conn.vendor == "postgresql"


@dataclass(frozen=True)
class _Insert:
    """How one model's rows are inserted on one connection."""

    fields: tuple[Field, ...]
    into_sql: str
    # The whole INSERT ... VALUES (...) [RETURNING ...].
    sql: str
    cast_values_sql: str
    returning_sql: str
    generated_pk: Field | None

    @property
    def returns(self) -> bool:
        return self.generated_pk is not None

    def params(self, instance: Model, conn: BaseDatabaseWrapper) -> list[Any]:
        return [
            field.get_db_prep_save(field.pre_save(instance, True), conn) for field in self.fields
        ]

    def returned(
        self, instance: Model, row: Sequence[Any] | None, conn: BaseDatabaseWrapper
    ) -> None:
        if self.generated_pk is not None:
            assert row is not None
            instance.pk = _value_read(row[0], self.generated_pk, "returned", conn)
        instance._state.adding = False
        instance._state.db = conn.alias


def _insert(model: type[Model], conn: BaseDatabaseWrapper) -> _Insert:
    return _made_for(conn, ("insert", model), lambda conn: _insert_make(model, conn))


def _insert_make(model: type[Model], conn: BaseDatabaseWrapper) -> _Insert:
    meta, quote = model._meta, conn.ops.quote_name
    pk = meta.pk
    assert pk is not None
    # An auto-increment key (AutoField and kin) is the database's to give.
    generated = pk if isinstance(pk, AutoFieldMixin) else None
    fields = tuple(field for field in meta.concrete_fields if field is not generated)
    returning = conn.ops.return_insert_columns([generated])[0] if generated else ""
    into = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
    return _Insert(
        fields=fields,
        into_sql=into,
        sql=f"{into} VALUES ({', '.join(['%s'] * len(fields))}) {returning}".rstrip(),
        # Selected values have no column to take a type from: each says its own.
        cast_values_sql=", ".join(f"CAST(%s AS {_cast_type(f, conn)})" for f in fields),
        returning_sql=returning,
        generated_pk=generated,
    )


def _cast_type(field: Field, conn: BaseDatabaseWrapper) -> str:
    """The type to CAST a value of ``field`` to, as ``Cast(..., output_field=field)`` does."""
    cast_db_type: Callable[[BaseDatabaseWrapper], str] = field.cast_db_type  # type: ignore[attr-defined]
    return cast_db_type(conn)
