"""The privacy filter over stored rows: parse, filter and serialise, one row after another.

A batch build reads each exposure as ``(payload JSON, tag)`` and sends the
partner one serialised line per eligible event. ``row_filter`` gives the
function that does that for a chunk of rows, counting as it goes; with the C
speedups built it is ``_speedups.RowFilter``, which follows the filter's own
routes without the interpreter in between and hands every other event to
``filter_with_result``; ``RowFilter`` below is the same in Python, and the
reference the tests hold the C version to.

The C version has a byte path besides (``_bytes_path_fits``: with orjson's own
functions and newline-ended lines). A row whose JSON text it reads exactly as
orjson would, whose signal key it has met under the same text of the fields
``signal_key`` reads, and whose route's minimiser is a compiled selector, is
written straight from its text: kept values copied as orjson writes them,
transformed ones computed in C from their text where the transform is C
(pseudonyms, IPv4 and IPv6 prefixes, short coordinates) or else from a cache of
JSON text per JSON text (each transform's ``text_cache``), denied fields left
out. No Python object is made per field.
Every other row, and every row the byte path is unsure of, goes the object
path above; ``tests/privacy/test_bytes_path.py`` holds the two to the same
lines. A filter remembers the routes it has met: a policy never changes a route
it has made.

Called as ``filter_rows(rows, start, lines, dropped, audits, tags, records_left,
bytes_left)``:

- ``rows`` (a list of ``(payload, tag)``) is read from index ``start``;
- each eligible event's line, ``dumps(record, option=option)``, is appended to
  ``lines`` while it fits: at most ``records_left`` lines and ``bytes_left``
  bytes. The row whose line does not fit stops the call, uncounted: it starts
  the next part, where it is filtered again (the filter gives it the same line);
- ``dropped`` counts events per drop reason (``UNSPECIFIED_REASON`` when the
  filter gave none), ``audits`` per result audit tuple, ``tags`` per row tag
  of the events sent;
- it returns ``(next_start, candidates, line_bytes)``: where to go on, the
  rows counted (sent or dropped) and the bytes appended.

A payload that is not JSON, or a record that cannot be serialised, raises: the
build fails and is retried, nothing half-counted is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson

from gateway.privacy import filter as privacy_filter
from gateway.privacy.policy import PartnerPolicy, policy_cache
from gateway.privacy.speedups import speedups_load

# The compiled row filter (see speedups.py), or None.
_speedups = speedups_load()

# Why an exposure was dropped when the filter gave no reason (it should always give one).
UNSPECIFIED_REASON = "unspecified"

Row = tuple[Any, Any]
# Where a policy keeps its compiled row filters, by what each was made with.
ROW_FILTERS_ATTRIBUTE = "_row_filters"


class FilterRows(Protocol):
    def __call__(
        self,
        rows: list[Row],
        start: int,
        lines: list[bytes],
        dropped: dict[str, int],
        audits: dict[tuple[str, ...], int],
        tags: dict[Any, int],
        records_left: int,
        bytes_left: int,
        /,
    ) -> tuple[int, int, int]: ...


def row_filter(
    policy: PartnerPolicy,
    *,
    loads: Callable[[Any], Any],
    dumps: Callable[..., bytes],
    option: int,
) -> FilterRows:
    """The row filter for ``policy`` (compiled when built), serialising with ``dumps``.

    The compiled one is made once per policy and serialiser and kept on the
    policy, as the filter's other caches are: it learns the fingerprints of the
    signal keys it meets, and a policy kept for a worker's next build
    (``gateway.delivery.kept_policies``) brings them along. It is not for two
    threads at once: one build uses a policy at a time.
    """
    if _speedups is None or getattr(policy, "__dict__", None) is None:
        return RowFilter(policy, loads=loads, dumps=dumps, option=option)
    # Looked up now, not imported: tests swap the filter's signal_key for the
    # Python one, or filter_with_result for one that fails; each gets its own.
    signal_key, slow = privacy_filter.signal_key, privacy_filter.filter_with_result
    key = (loads, dumps, option, signal_key, slow)
    filters: dict[tuple[Any, ...], FilterRows] = policy_cache(policy, ROW_FILTERS_ATTRIBUTE, dict)
    compiled: FilterRows | None = filters.get(key)
    if compiled is None:
        compiled = _speedups.RowFilter(
            policy=policy,
            routes_name=privacy_filter.ROUTES_ATTRIBUTE,
            signal_key=signal_key,
            slow=slow,
            loads=loads,
            dumps=dumps,
            option=option,
            unspecified=UNSPECIFIED_REASON,
            bytes_path=_bytes_path_fits(loads, dumps, option),
        )
        filters[key] = compiled
    return compiled


def _bytes_path_fits(loads: Callable[[Any], Any], dumps: Callable[..., bytes], option: int) -> bool:
    """Can the compiled filter write lines from the stored text (its byte path)?

    Only with orjson's own functions and every line ending in a newline: the byte
    path writes what ``orjson.dumps(record, option=option)`` writes for such an
    option (the records' keys are in sorted order either way).
    """
    allowed = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SORT_KEYS
    return (
        loads is orjson.loads
        and dumps is orjson.dumps
        and bool(option & orjson.OPT_APPEND_NEWLINE)
        and not option & ~allowed
    )


class RowFilter:
    """The row filter in Python (see the module docstring)."""

    def __init__(
        self,
        policy: PartnerPolicy,
        *,
        loads: Callable[[Any], Any],
        dumps: Callable[..., bytes],
        option: int,
    ) -> None:
        self._policy = policy
        self._loads = loads
        self._dumps = dumps
        self._option = option

    def __call__(
        self,
        rows: list[Row],
        start: int,
        lines: list[bytes],
        dropped: dict[str, int],
        audits: dict[tuple[str, ...], int],
        tags: dict[Any, int],
        records_left: int,
        bytes_left: int,
        /,
    ) -> tuple[int, int, int]:
        filter_with_result = privacy_filter.filter_with_result
        policy, loads, dumps, option = self._policy, self._loads, self._dumps, self._option
        candidates = added = 0
        index = max(start, 0)
        while index < len(rows):
            payload, tag = rows[index]
            result, record = filter_with_result(loads(payload), policy)
            if record is None or not result.decision.eligible:
                reason = result.decision.reason or UNSPECIFIED_REASON
                dropped[reason] = dropped.get(reason, 0) + 1
                candidates += 1
                index += 1
                continue
            line = dumps(record, option=option)
            if records_left <= 0 or len(line) > bytes_left:
                break  # the next part's first row
            lines.append(line)
            audits[result.audit] = audits.get(result.audit, 0) + 1
            tags[tag] = tags.get(tag, 0) + 1
            records_left -= 1
            bytes_left -= len(line)
            added += len(line)
            candidates += 1
            index += 1
        return index, candidates, added
