"""Query parameters of the batch listing, parsed strictly so partners see their mistakes.

No Django import: (name, values) pairs go in, a typed value or an
``InvalidRequest`` naming every bad parameter comes out.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.errors import InvalidRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
KNOWN_PARAMETERS = ("feed", "since", "limit", "cursor")

# re.ASCII: \d would otherwise also match digits of other scripts.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
# "+01:00" sent without percent-encoding arrives as " 01:00" (a "+" in a query
# string means a space); restore it rather than reject a common client slip.
_UNENCODED_PLUS = re.compile(r"^(.*\d) (\d{2}:\d{2})$", re.ASCII)
_DIGITS = re.compile(r"^\d{1,6}$", re.ASCII)


@dataclass(frozen=True)
class Cursor:
    """Position after the last batch of a page, in (window_start, id) descending order."""

    window_start: datetime
    batch_id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.window_start.isoformat(), self.batch_id.hex]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """The cursor in ``value``; ValueError when it was not made by ``encode``."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            window_start, batch_id = json.loads(raw)
            cursor = cls(datetime.fromisoformat(window_start), uuid.UUID(hex=batch_id))
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError("not a cursor returned by this API") from exc
        if cursor.window_start.tzinfo is None:
            raise ValueError("not a cursor returned by this API")
        return cursor


@dataclass(frozen=True)
class BatchListParams:
    """Validated query of ``GET /batches``."""

    feed: str | None = None
    since: datetime | None = None
    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = None


def parse_rfc3339(value: str) -> datetime:
    """A timezone-aware datetime; ValueError unless ``value`` is RFC 3339 with an offset."""
    fixed = _UNENCODED_PLUS.sub(r"\1+\2", value.strip())
    if not _RFC3339.match(fixed):
        raise ValueError("must be an RFC 3339 date-time with offset, e.g. 2026-11-24T00:00:00Z")
    # fromisoformat takes at most 6 fractional digits; RFC 3339 allows more.
    fixed = re.sub(r"(\.\d{6})\d+", r"\1", fixed)
    return datetime.fromisoformat(fixed.upper().replace("Z", "+00:00"))


def batch_list_params(query: Iterable[tuple[str, Sequence[str]]]) -> BatchListParams:
    """Parse ``query`` (name, values) pairs, e.g. ``QueryDict.lists()``."""
    errors: list[dict[str, str]] = []
    values: dict[str, str] = {}
    for name, given in query:
        if name not in KNOWN_PARAMETERS:
            known = ", ".join(KNOWN_PARAMETERS)
            errors.append(_error(name, "unknown_parameter", f"Unknown parameter; use {known}."))
        elif len(given) != 1:
            errors.append(_error(name, "repeated_parameter", "Give this parameter once."))
        else:
            values[name] = given[0]

    feed = values.get("feed")
    if feed == "":
        errors.append(_error("feed", "blank", "Must be a feed name."))
    since: datetime | None = None
    limit = DEFAULT_LIMIT
    cursor: Cursor | None = None
    if "since" in values:
        try:
            since = parse_rfc3339(values["since"])
        except ValueError as exc:
            errors.append(_error("since", "invalid_datetime", str(exc)))
    if "limit" in values:
        raw = values["limit"].strip()
        if _DIGITS.match(raw) and 1 <= int(raw) <= MAX_LIMIT:
            limit = int(raw)
        else:
            detail = f"Must be an integer from 1 to {MAX_LIMIT}."
            errors.append(_error("limit", "out_of_range", detail))
    if "cursor" in values:
        try:
            cursor = Cursor.decode(values["cursor"])
        except ValueError as exc:
            errors.append(_error("cursor", "invalid_cursor", f"Invalid cursor: {exc}."))

    if errors:
        raise invalid_parameters(errors)
    return BatchListParams(feed=feed or None, since=since, limit=limit, cursor=cursor)


def invalid_parameters(errors: list[dict[str, str]]) -> InvalidRequest:
    """A 400 problem naming each bad parameter in ``detail`` and in ``errors``."""
    names = ", ".join(dict.fromkeys(error["field"] for error in errors))
    return InvalidRequest(
        f"Invalid query parameter: {names}.", code="invalid_parameter", errors=errors
    )


def _error(field: str, code: str, detail: str) -> dict[str, str]:
    return {"field": field, "code": code, "detail": detail}
