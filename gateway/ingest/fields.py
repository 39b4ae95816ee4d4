"""A JSON column kept as the text it was written as: PostgreSQL ``json``, not ``jsonb``.

An exposure's payload is written once and read whole, as text, by every
build of every feed that delivers it (``gateway.delivery.build``); nothing
queries inside it. ``jsonb`` would parse it at every insert and, worse, turn
it back into text at every read: about 3.6 µs a row, the largest part of
PostgreSQL's work when a batch of a million exposures is built (a ``json``
column gives its text back for about 1 µs; docs/benchmarks.md). ``json``
checks the text is JSON and keeps it as written; it is also smaller on disk.

What ``json`` lacks: jsonb's operators (``@>``, ``?``) and its indexes, hence
Django's ``contains``/``has_key`` lookups and comparisons of key transforms.
Key transforms themselves (``payload__campaign_id`` read as a value) work.
Other databases (the demo's SQLite) keep Django's own JSON column.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.types.string import TextLoader


class JSONTextField(models.JSONField):
    """``JSONField`` stored as PostgreSQL ``json``: the text as written, read back as it is."""

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)


def json_loaded_as_text(*, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Have psycopg give ``json`` values to Django as text, as Django has it do for ``jsonb``.

    The field decodes them itself (with its decoder). Decoded by psycopg as
    well, a string value would be decoded twice: a key transform reading
    ``"123"`` would give the number 123. Connected to ``connection_created``.
    """
    if connection.vendor == "postgresql":
        connection.connection.adapters.register_loader("json", TextLoader)
