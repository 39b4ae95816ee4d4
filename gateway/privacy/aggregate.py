"""Aggregate-only feeds: counts per cell of a few dimensions, never a row per event.

A partner that may only receive counts gets one row per combination of the
feed's dimension values (a *cell*)::

    {"campaign_id": "cmp-1", "event_type": "impression", "geo.country": "DE",
     "events": 1200, "users": 870}

Dimension values are read from the event's minimised record (the privacy
filter's output with the dimensions as its allowlist: IPs truncated, lat/lon
rounded, user agents reduced, fields of denied activities removed); a value that
is missing, removed, or not a scalar is ``null``. Output keys are the dotted
dimension paths themselves.

``users`` counts distinct people by one raw identifier per event, taken in this
order: ``user_id``, else ``device.ifa``, else ``household_id``. An identifier
whose activity is denied for the event (``transmit_user_ids`` for user and
household ids, ``transmit_device_ids`` or limit-ad-tracking for the ifa) is not
used. The identifier is hashed with a random per-aggregation key as soon as it
is read; only the hashes are kept, in memory, and neither the identifier nor
its hash is ever output. An event without a usable identifier counts in
``events`` but not in ``users``: counting it as a person of its own could lift
a cell of one person over the threshold. Ingest requires ``user_id``, so the
fallbacks only matter where user ids are denied for an event. A person whose
consent changes within a window (user ids allowed for one event, denied for
the next) can be counted twice, once by user id and once by ifa: rare, and a
reason to keep the threshold with some margin.

A cell with fewer than ``min_users`` distinct users is suppressed: it is left
out, and only the number of such cells is reported.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.privacy.transform import denied_paths

DEFAULT_MIN_USERS = 50
EVENTS_KEY = "events"
TRANSMIT_USER_IDS = "transmit_user_ids"
TRANSMIT_DEVICE_IDS = "transmit_device_ids"
USERS_KEY = "users"

# Grouping by any of these makes a row per person or per event (or, for consent
# strings, which carry a per-user timestamp, close to it). Neither the paths nor
# anything above or below them may be a dimension.
IDENTIFYING_PATHS = (
    "user_id",
    "household_id",
    "device.ifa",
    "user_id_previous",
    "household_id_previous",
    "device.ifa_previous",
    "event_id",
    "consent",
)
# Objects of the exposure record (gateway.ingest.validation): a dimension names
# one of their fields, never the object.
OBJECT_PATHS = ("device", "geo", "consent")


def aggregate_dimensions_problems(
    dimensions: object,
    allowlist: Iterable[object],
    *,
    denied_activities: Iterable[str] = (),
) -> list[str]:
    """Why ``dimensions`` cannot be an aggregate feed's dimensions; empty when they can.

    Each dimension must be a dotted field path, listed once, that the feed's
    ``allowlist`` allows (itself or a parent), that does not identify a person
    or an event (``IDENTIFYING_PATHS``), that names a field rather than an object,
    and that no activity in ``denied_activities`` (those denied for every event,
    e.g. by the partner's defaults) removes. An empty list is allowed: one row
    with the window's totals.
    """
    if not isinstance(dimensions, list | tuple):
        return ["Must be a list of dotted field paths."]
    # A malformed allowlist (not a list) allows nothing: every dimension is refused.
    listed = allowlist if isinstance(allowlist, list | tuple | set | frozenset) else ()
    allowed = {entry for entry in listed if isinstance(entry, str)}
    try:
        removed = set(denied_paths(denied_activities))
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    seen: set[str] = set()
    for dimension in dimensions:
        if not isinstance(dimension, str) or not all(dimension.split(".")):
            problems.append(f"{dimension!r} is not a dotted field path.")
            continue
        if dimension in seen:
            problems.append(f"{dimension!r} is listed twice.")
            continue
        seen.add(dimension)
        problem = _dimension_problem(dimension, allowed=allowed, removed=removed)
        if problem:
            problems.append(f"{dimension!r} {problem}")
    return problems


def _dimension_problem(dimension: str, *, allowed: set[str], removed: set[str]) -> str | None:
    if dimension in (EVENTS_KEY, USERS_KEY):
        return "is the name of a count column."
    if any(_related(dimension, path) for path in IDENTIFYING_PATHS):
        return "identifies a person or an event: each row would be about one of them."
    if dimension in OBJECT_PATHS:
        return "is an object: name one of its fields, e.g. geo.country."
    if not any(prefix in allowed for prefix in _prefixes(dimension)):
        return "is not in the feed's field allowlist."
    if any(_related(dimension, path) for path in removed):
        return "is removed by a denied activity."
    return None


def _prefixes(path: str) -> list[str]:
    segments = path.split(".")
    return [".".join(segments[:n]) for n in range(1, len(segments) + 1)]


def _related(one: str, other: str) -> bool:
    """Whether one path is the other, or above or below it."""
    return one == other or one.startswith(other + ".") or other.startswith(one + ".")


# --- Aggregation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AggregateResult:
    """The rows of an aggregation (sorted by their dimension values) and what was withheld."""

    rows: tuple[dict[str, Any], ...]
    suppressed_cells: int
    # Events in the rows, and in the suppressed cells.
    events: int
    suppressed_events: int
    # Per tag given to Aggregation.add: events in the rows (not the suppressed cells).
    events_by_tag: dict[str, int]


@dataclass
class _Cell:
    events: int = 0
    users: set[int] = field(default_factory=set)
    tags: Counter[str] = field(default_factory=Counter)


# Sort order of dimension values of different JSON types; a value's type is part
# of its cell, so true and 1 (equal in Python) never share one.
_NULL, _BOOL, _INT, _FLOAT, _TEXT = range(5)
_NULL_VALUE = (_NULL, None)


class Aggregation:
    """Counts of events and distinct users per cell, fed one event at a time.

    ``dimensions`` are dotted paths (check them with ``aggregate_dimensions_problems``);
    a ``min_users`` below 1 counts as 1, so a cell without a single identified
    user is never output.
    """

    def __init__(
        self,
        *,
        dimensions: Sequence[str],
        min_users: int = DEFAULT_MIN_USERS,
        honour_lmt: bool = True,
    ) -> None:
        self._names = tuple(dimensions)
        self._paths = tuple(tuple(name.split(".")) for name in self._names)
        self._min_users = max(1, min_users)
        self._honour_lmt = honour_lmt
        # A fresh key per aggregation: the hashes mean nothing outside it.
        self._key = os.urandom(16)
        self._cells: dict[tuple[tuple[int, Any], ...], _Cell] = {}

    def add(
        self,
        record: Mapping[str, Any],
        *,
        event: Mapping[str, Any],
        denied_activities: frozenset[str] = frozenset(),
        tag: str | None = None,
    ) -> None:
        """Count one event: ``record`` gives its dimension values, ``event`` (raw) its user.

        ``denied_activities`` are the event's denied activities: their
        identifiers do not count users. ``tag`` (e.g. campaign, day and event
        type) is counted per cell, so the caller learns how many events of each
        tag the delivered rows hold.
        """
        key = tuple(_cell_value(_lookup(record, path)) for path in self._paths)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = _Cell()
        cell.events += 1
        user = user_key(event, denied_activities=denied_activities, honour_lmt=self._honour_lmt)
        if user is not None:
            cell.users.add(self._hash(user))
        if tag is not None:
            cell.tags[tag] += 1

    def finish(self) -> AggregateResult:
        """The rows of the cells with at least ``min_users`` users, in dimension-value order."""
        rows: list[dict[str, Any]] = []
        suppressed = suppressed_events = events = 0
        by_tag: Counter[str] = Counter()
        for key in sorted(self._cells):
            cell = self._cells[key]
            if len(cell.users) < self._min_users:
                suppressed += 1
                suppressed_events += cell.events
                continue
            row = {name: value for name, (_, value) in zip(self._names, key, strict=True)}
            row[EVENTS_KEY] = cell.events
            row[USERS_KEY] = len(cell.users)
            rows.append(row)
            events += cell.events
            by_tag.update(cell.tags)
        return AggregateResult(
            rows=tuple(rows),
            suppressed_cells=suppressed,
            events=events,
            suppressed_events=suppressed_events,
            events_by_tag=dict(sorted(by_tag.items())),
        )

    def _hash(self, user: str) -> int:
        # 64 bits: a collision (about 1 in 10^7 for a million users) only undercounts.
        data = user.encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(data, key=self._key, digest_size=8).digest()
        return int.from_bytes(digest, "big")


def aggregate(
    items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
    *,
    dimensions: Sequence[str],
    min_users: int = DEFAULT_MIN_USERS,
    honour_lmt: bool = True,
) -> AggregateResult:
    """Aggregate ``(record, raw event)`` pairs at once; see ``Aggregation``."""
    aggregation = Aggregation(dimensions=dimensions, min_users=min_users, honour_lmt=honour_lmt)
    for record, event in items:
        aggregation.add(record, event=event)
    return aggregation.finish()


def user_key(
    event: Mapping[str, Any],
    *,
    denied_activities: frozenset[str] = frozenset(),
    honour_lmt: bool = True,
) -> str | None:
    """The raw identifier that makes ``event``'s user distinct, prefixed by its kind.

    ``user_id``, else ``device.ifa``, else ``household_id``, each as a non-empty
    string and only when its activity is not in ``denied_activities``; the ifa
    also not when the device limits ad tracking and ``honour_lmt``. None when
    there is no usable identifier.
    """
    user_ids = TRANSMIT_USER_IDS not in denied_activities
    if user_ids:
        user_id = event.get("user_id")
        if isinstance(user_id, str) and user_id:
            return "u:" + user_id
    device = event.get("device")
    if TRANSMIT_DEVICE_IDS not in denied_activities and isinstance(device, Mapping):
        ifa = device.get("ifa")
        if isinstance(ifa, str) and ifa and not (honour_lmt and _limits_ad_tracking(device)):
            return "d:" + ifa
    if user_ids:
        household_id = event.get("household_id")
        if isinstance(household_id, str) and household_id:
            return "h:" + household_id
    return None


def _limits_ad_tracking(device: Mapping[str, Any]) -> bool:
    # As the filter reads it: absent, false or 0 is off; anything else counts as on.
    lmt = device.get("lmt")
    return not (lmt is None or lmt is False or (type(lmt) is int and lmt == 0))


def _lookup(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for segment in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(segment)
    return value


def _cell_value(value: Any) -> tuple[int, Any]:
    kind = type(value)
    if kind is str:
        return (_TEXT, value)
    if kind is bool:
        return (_BOOL, value)
    if kind is int:
        return (_INT, value)
    if kind is float:
        # NaN is unequal to itself and would split a cell per event.
        return (_FLOAT, value) if math.isfinite(value) else _NULL_VALUE
    return _NULL_VALUE
