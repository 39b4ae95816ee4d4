"""A send's two writes to the database, each in one round trip on PostgreSQL.

Every send writes twice, and each write must be atomic: the *claim* (the
batch moves to "sending" and its attempt row appears, before any traffic)
and the *outcome* (the attempt's result and the batch's next state). Through
the ORM each is a transaction of four round trips (BEGIN, two statements,
COMMIT), and with the ORM's work on two statements that was about a third of
a send's bookkeeping (docs/benchmarks.md).

On PostgreSQL each write is instead one statement, a data-modifying ``WITH``,
atomic by itself in autocommit. The statements are still the ORM's, compiled
from the same querysets and instances, so the rules stay where they are
written (``sending._due_q``); they are only joined. Other databases (SQLite,
a newcomer's first run) run the two statements in a transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model, QuerySet
from django.db.models.sql import UpdateQuery


def claim_write(*, due: QuerySet[Any], claim: dict[str, Any], attempt: Model) -> bool:
    """Update the one row of ``due`` with ``claim`` and insert ``attempt`` if it matched.

    Returns whether the claim was made; the attempt is saved only then.
    """
    alias = due.db
    connection = connections[alias]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=alias):
            if not due.update(**claim):
                return False
            attempt.save(force_insert=True, using=alias)
            return True
    update_sql, update_params = _update_statement(due, claim)
    insert_sql, insert_params = _insert_from(attempt, source="claimed", alias=alias)
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(
            f"WITH claimed AS ({update_sql} RETURNING 1) {insert_sql}",
            (*update_params, *insert_params),
        )
        row = cursor.fetchone()
    if row is None:
        return False
    attempt.pk = row[0]
    attempt._state.adding = False
    attempt._state.db = alias
    return True


def outcome_write(
    *, attempt: Model, attempt_fields: list[str], batch: Model, batch_fields: list[str]
) -> None:
    """Save ``attempt_fields`` of the attempt and ``batch_fields`` of its batch, together."""
    alias = batch._state.db or "default"
    connection = connections[alias]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=alias):
            attempt.save(update_fields=attempt_fields, using=alias)
            batch.save(update_fields=batch_fields, using=alias)
        return
    attempt_sql, attempt_params = _update_statement(
        type(attempt)._default_manager.using(alias).filter(pk=attempt.pk),
        {name: getattr(attempt, name) for name in attempt_fields},
    )
    batch_sql, batch_params = _update_statement(
        type(batch)._default_manager.using(alias).filter(pk=batch.pk),
        {name: getattr(batch, name) for name in batch_fields},
    )
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(
            f"WITH attempt_written AS ({attempt_sql}) {batch_sql}",
            (*attempt_params, *batch_params),
        )


def _update_statement(queryset: QuerySet[Any], values: dict[str, Any]) -> tuple[str, tuple]:
    """The UPDATE that ``queryset.update(**values)`` runs, compiled and not run."""
    query = queryset.query.chain(UpdateQuery)
    assert isinstance(query, UpdateQuery)
    query.add_update_values(values)
    query.clear_select_clause()
    sql, params = query.get_compiler(queryset.db).as_sql()
    return sql, tuple(params)


def _insert_from(instance: Model, *, source: str, alias: str) -> tuple[str, tuple]:
    """An INSERT of ``instance`` (auto primary key) for each row of ``source``, returning its pk.

    Each value is cast to its column's type: in ``INSERT ... SELECT`` PostgreSQL
    types a bare literal by itself, not by the column it goes to.
    """
    connection = connections[alias]
    meta = instance._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    selected = ", ".join(f"%s::{_cast_type(field, connection)}" for field in fields)
    params = tuple(
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
    )
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {selected} FROM {source} "
        f"RETURNING {quote(meta.pk.column)}"
    )
    return sql, params


def _cast_type(field: Field[Any, Any], connection: BaseDatabaseWrapper) -> str:
    """The type a value for ``field``'s column is cast to (``cast_db_type``: not in the stubs)."""
    return str(field.cast_db_type(connection))  # type: ignore[attr-defined]
