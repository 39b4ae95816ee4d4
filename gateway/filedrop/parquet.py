"""Parquet bodies for file-drop feeds: the same interface as ``BodyWriter``, streamed by row group.

Records are flattened to dotted column names (``{"geo": {"country": "DE"}}``
becomes the column ``geo.country``). The schema comes from the feed, never
from the data: every column the feed's allowlist (or, for aggregate feeds,
its dimensions) can produce is present in every file, null where a record has
no value, so a partner's table definition holds for every batch. Column types
follow the exposure contract (``gateway.ingest.validation``); a field the
contract does not know is a string column.

Rows are buffered column by column and written every ``ROW_GROUP_ROWS``
records, so memory stays bounded however large the window. The body's
SHA-256 and size are those of the Parquet file itself.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from gateway.delivery.body import NO_LIMIT, Body
from gateway.privacy.aggregate import EVENTS_KEY, USERS_KEY
from gateway.privacy.transform import IDENTIFIER_PATHS, PREVIOUS_SUFFIX

if TYPE_CHECKING:
    from partners.models import Feed

# Records per row group: about 10 to 50 MB of buffered values at most.
ROW_GROUP_ROWS = 20_000
# Snappy: read by every Parquet implementation a partner may use.
COMPRESSION = "snappy"

TIMESTAMP = pa.timestamp("us", tz="UTC")

# Every leaf of an exposure record as the privacy filter sends it, in contract
# order; pseudonyms under a rotation's previous key sit beside their field.
EXPOSURE_COLUMN_TYPES: dict[str, pa.DataType] = {
    "event_id": pa.string(),
    "occurred_at": TIMESTAMP,
    "event_type": pa.string(),
    "media_type": pa.string(),
    "content_type": pa.string(),
    "advertiser_id": pa.string(),
    "campaign_id": pa.string(),
    "line_item_id": pa.string(),
    "creative_id": pa.string(),
    "placement_id": pa.string(),
    "content_id": pa.string(),
    "device.type": pa.string(),
    "device.os": pa.string(),
    "device.ifa": pa.string(),
    "device.ifa_previous": pa.string(),
    "device.lmt": pa.bool_(),
    "device.atts": pa.int32(),
    "ip": pa.string(),
    "user_agent": pa.string(),
    "geo.country": pa.string(),
    "geo.region": pa.string(),
    "geo.city": pa.string(),
    "geo.postal_code": pa.string(),
    "geo.lat": pa.float64(),
    "geo.lon": pa.float64(),
    "user_id": pa.string(),
    "user_id_previous": pa.string(),
    "household_id": pa.string(),
    "household_id_previous": pa.string(),
    "consent.gdpr": pa.int32(),
    "consent.tcf": pa.string(),
    "consent.gpp": pa.string(),
    "consent.gpp_sid": pa.list_(pa.int32()),
    "consent.us_privacy": pa.string(),
    "consent.gpc": pa.bool_(),
    "consent.coppa": pa.bool_(),
}
AGGREGATE_COUNT_COLUMNS = (EVENTS_KEY, USERS_KEY)


class ParquetSchemaError(ValueError):
    """A record does not fit the feed's Parquet schema: the build fails rather than drop data."""


@dataclass(frozen=True)
class Column:
    """One Parquet column: its dotted name and type."""

    name: str
    type: pa.DataType


def event_columns(allowlist: Iterable[str]) -> tuple[Column, ...]:
    """The columns an event feed's records can have: every contract leaf the allowlist keeps.

    An allowlisted object (``geo``) brings all its leaves; an allowlisted
    identifier brings its ``_previous`` pseudonym too. Unknown paths become
    string columns after the known ones, sorted.
    """
    paths = [path for path in dict.fromkeys(allowlist) if path]
    if not paths:
        raise ParquetSchemaError("a Parquet feed needs at least one allowlisted field")
    names = [name for name in EXPOSURE_COLUMN_TYPES if any(_keeps(path, name) for path in paths)]
    unknown = sorted(path for path in paths if not any(_keeps(path, name) for name in names))
    return tuple(Column(name, EXPOSURE_COLUMN_TYPES[name]) for name in names) + tuple(
        Column(name, pa.string()) for name in unknown
    )


def aggregate_columns(dimensions: Sequence[str]) -> tuple[Column, ...]:
    """An aggregate feed's columns: its dimensions in order, then the counts."""
    columns = [Column(name, EXPOSURE_COLUMN_TYPES.get(name, pa.string())) for name in dimensions]
    return (*columns, *(Column(name, pa.int64()) for name in AGGREGATE_COUNT_COLUMNS))


def _keeps(allowlisted: str, column: str) -> bool:
    if column == allowlisted or column.startswith(allowlisted + "."):
        return True
    return allowlisted in IDENTIFIER_PATHS and column == allowlisted + PREVIOUS_SUFFIX


def writer_for_feed(feed: Feed, *, max_records: int = NO_LIMIT) -> ParquetBodyWriter:
    """A writer with the feed's columns (events or aggregate)."""
    from partners.models import FeedShape

    if feed.shape == FeedShape.AGGREGATE:
        return ParquetBodyWriter(columns=aggregate_columns(feed.aggregate_dimensions))
    return ParquetBodyWriter(columns=event_columns(feed.field_allowlist), max_records=max_records)


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"geo": {"country": "DE"}}`` -> ``{"geo.country": "DE"}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _timestamp(value: Any) -> datetime:
    # Records carry RFC 3339 strings with an offset (ingest normalises them to "Z").
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(instant, datetime) or instant.tzinfo is None:
        raise ParquetSchemaError(f"not a timestamp with an offset: {value!r}")
    return instant


def _text(value: Any) -> str:
    # Only for fields the contract does not know: never lose a value to a type.
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _converter(column_type: pa.DataType) -> Callable[[Any], Any] | None:
    if column_type == TIMESTAMP:
        return _timestamp
    if column_type == pa.string():
        return _text
    return None


class ParquetBodyWriter:
    """Streams records into a Parquet temporary file, one row group per ``row_group_rows``."""

    def __init__(
        self,
        *,
        columns: Sequence[Column],
        row_group_rows: int = ROW_GROUP_ROWS,
        max_records: int = NO_LIMIT,
    ) -> None:
        self.schema = pa.schema([pa.field(column.name, column.type) for column in columns])
        self._converters = {column.name: _converter(column.type) for column in columns}
        self._row_group_rows = row_group_rows
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the Body)
        self._writer = pq.ParquetWriter(self._file, self.schema, compression=COMPRESSION)
        self._buffer: dict[str, list[Any]] = {name: [] for name in self._converters}
        self._buffered = 0
        self._records = 0
        self._max_records = max_records

    def write(self, record: Mapping[str, Any]) -> bool:
        """Add ``record`` as one row; False, writing nothing, once ``max_records`` are in."""
        if self._records >= self._max_records:
            return False
        row = flatten(record)
        unknown = row.keys() - self._converters.keys()
        if unknown:
            raise ParquetSchemaError(
                f"fields {', '.join(sorted(unknown))} are not columns of this feed's Parquet "
                "schema; add them to gateway.filedrop.parquet"
            )
        for name, convert in self._converters.items():
            value = row.get(name)
            if value is not None and convert is not None:
                value = convert(value)
            self._buffer[name].append(value)
        self._buffered += 1
        self._records += 1
        if self._buffered >= self._row_group_rows:
            self._flush()
        return True

    def finish(self) -> Body:
        """Write the last row group and the footer; the Body owns the file from here."""
        if self._buffered:
            self._flush()
        self._writer.close()
        self._file.seek(0)
        digest = hashlib.file_digest(self._file, "sha256")  # type: ignore[arg-type]  # a binary file
        size = self._file.tell()
        self._file.seek(0)
        return Body(
            file=self._file,
            sha256=digest.hexdigest(),
            uncompressed_bytes=size,
            records=self._records,
        )

    def _flush(self) -> None:
        table = pa.Table.from_pydict(self._buffer, schema=self.schema)
        self._writer.write_table(table)
        for values in self._buffer.values():
            values.clear()
        self._buffered = 0
