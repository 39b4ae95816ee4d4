"""The row filter, compiled or not, gives what the privacy filter and orjson give, row by row.

Each case runs the compiled ``_speedups.RowFilter`` (where it is built) and the
Python ``rows.RowFilter`` over the same stored rows, and compares both with a
plain loop over ``filter_with_result`` and ``orjson.dumps``: the lines, where
each call stops, and the counts per drop reason, audit tuple and tag.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy import filter as privacy_filter
from gateway.privacy import rows as privacy_rows
from gateway.privacy.policy import PartnerPolicy

from .engine_builders import policy
from .test_fast_paths import COMPILED, POLICIES, events, realistic_events, unusual_events

OPTION = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
NO_LIMIT = 2**62
KINDS = [
    pytest.param(
        "compiled",
        marks=pytest.mark.skipif(not COMPILED, reason="gateway.privacy._speedups is not built"),
    ),
    "python",
]


def filter_for(kind: str, partner: PartnerPolicy) -> privacy_rows.FilterRows:
    if kind == "python":
        return privacy_rows.RowFilter(
            partner, loads=orjson.loads, dumps=orjson.dumps, option=OPTION
        )
    made = privacy_rows.row_filter(partner, loads=orjson.loads, dumps=orjson.dumps, option=OPTION)
    assert type(made).__name__ == "RowFilter" and type(made).__module__.endswith("_speedups")
    return made


def stored(event_list: list[Any]) -> list[tuple[str, str]]:
    """Events as the build reads them (JSON text, as PostgreSQL gives it) and a tag."""
    return [(json.dumps(_json_value(event)), f"tag-{n % 3}") for n, event in enumerate(event_list)]


def _json_value(value: Any) -> Any:
    # What JSON can hold: no NaN or infinity, objects with text keys.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value


def expected_run(
    partner: PartnerPolicy, rows: list[tuple[str, str]], start: int, records: int, size: int
) -> tuple[tuple[int, int, int], list[bytes], dict[str, int], dict[Any, int], dict[Any, int]]:
    """The contract of rows.py, written out plainly."""
    lines: list[bytes] = []
    dropped: dict[str, int] = {}
    audits: dict[Any, int] = {}
    tags: dict[Any, int] = {}
    candidates = added = 0
    index = start
    for index in range(start, len(rows)):
        payload, tag = rows[index]
        result, record = privacy_filter.filter_with_result(orjson.loads(payload), partner)
        if record is None or not result.decision.eligible:
            reason = result.decision.reason or privacy_rows.UNSPECIFIED_REASON
            dropped[reason] = dropped.get(reason, 0) + 1
            candidates += 1
            continue
        line = orjson.dumps(record, option=OPTION)
        if len(lines) >= records or added + len(line) > size:
            break
        lines.append(line)
        audits[result.audit] = audits.get(result.audit, 0) + 1
        tags[tag] = tags.get(tag, 0) + 1
        added += len(line)
        candidates += 1
    else:
        index = max(start, len(rows))
    return (index, candidates, added), lines, dropped, audits, tags


def actual_run(
    filter_rows: privacy_rows.FilterRows,
    rows: list[tuple[str, str]],
    start: int,
    records: int,
    size: int,
) -> tuple[tuple[int, int, int], list[bytes], dict[str, int], dict[Any, int], dict[Any, int]]:
    lines: list[bytes] = []
    dropped: dict[str, int] = {}
    audits: dict[Any, int] = {}
    tags: dict[Any, int] = {}
    stop = filter_rows(rows, start, lines, dropped, audits, tags, records, size)
    return stop, lines, dropped, audits, tags


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_realistic_rows_give_the_filters_lines_and_counts(kind: str, name: str) -> None:
    partner = policy(**POLICIES[name])
    filter_rows = filter_for(kind, partner)
    rows = stored(list(realistic_events(1_500)))
    for _ in range(2):  # the second pass along the routes the first one left
        assert actual_run(filter_rows, rows, 0, NO_LIMIT, NO_LIMIT) == expected_run(
            partner, rows, 0, NO_LIMIT, NO_LIMIT
        )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_unusual_rows_give_the_filters_lines_and_counts(kind: str, name: str) -> None:
    partner = policy(**POLICIES[name])
    odd_rows = [("[1, 2]", "list"), ('"text"', "str"), ("null", "null"), ("{}", "empty")]
    rows = stored(unusual_events()) + odd_rows
    for _ in range(2):
        assert actual_run(filter_for(kind, partner), rows, 0, NO_LIMIT, NO_LIMIT) == (
            expected_run(partner, rows, 0, NO_LIMIT, NO_LIMIT)
        )


@pytest.mark.parametrize("kind", KINDS)
@given(
    event_list=st.lists(events, max_size=8),
    start=st.integers(-1, 9),
    records=st.integers(0, 6),
    size=st.integers(0, 3_000),
)
def test_any_rows_and_limits_stop_where_the_contract_says(
    kind: str, event_list: list[Any], start: int, records: int, size: int
) -> None:
    partner = policy(**POLICIES["measurement feed"])
    rows = stored(event_list)
    assert actual_run(filter_for(kind, partner), rows, start, records, size) == expected_run(
        partner, rows, max(start, 0), records, size
    )


@pytest.mark.parametrize("kind", KINDS)
def test_routes_that_start_over_change_no_line(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(privacy_filter, "ROUTE_CACHE_SIZE", 3)
    partner = policy(**POLICIES["measurement feed"])
    rows = stored(list(realistic_events(800)))
    got = actual_run(filter_for(kind, partner), rows, 0, NO_LIMIT, NO_LIMIT)
    assert got == expected_run(partner, rows, 0, NO_LIMIT, NO_LIMIT)


@pytest.mark.parametrize("kind", KINDS)
def test_a_minimiser_that_fails_drops_the_event_as_the_filter_does(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner = policy(**POLICIES["measurement feed"])
    rows = stored(list(realistic_events(50)))
    filter_rows = filter_for(kind, partner)
    actual_run(filter_rows, rows, 0, NO_LIMIT, NO_LIMIT)  # routes made

    def exploding(*args: object, **kwargs: object) -> None:
        raise RuntimeError("minimise exploded")

    routes = partner.__dict__[privacy_filter.ROUTES_ATTRIBUTE]
    for key, (minimise, result) in list(routes.items()):
        if minimise is not None:
            routes[key] = (exploding, result)

    # A new filter: one remembers the routes it has met (a policy never changes a
    # route), and the policy keeps the one it made.
    partner.__dict__.pop(privacy_rows.ROW_FILTERS_ATTRIBUTE, None)
    filter_rows = filter_for(kind, partner)
    (_, candidates, added), lines, dropped, _, _ = actual_run(filter_rows, rows, 0, NO_LIMIT, 0)
    assert (candidates, added, lines) == (50, 0, [])
    assert dropped.get("filter_error", 0) > 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_payload_that_is_not_json_raises_and_counts_nothing_after_it(kind: str) -> None:
    partner = policy(**POLICIES["measurement feed"])
    rows = [*stored(list(realistic_events(3))), ("{not json", "tag")]
    with pytest.raises(orjson.JSONDecodeError):
        filter_for(kind, partner)(rows, 0, [], {}, {}, {}, NO_LIMIT, NO_LIMIT)


@pytest.mark.skipif(not COMPILED, reason="gateway.privacy._speedups is not built")
def test_the_compiled_filter_checks_what_it_is_given() -> None:
    filter_rows = filter_for("compiled", policy(**POLICIES["measurement feed"]))
    with pytest.raises(TypeError):
        filter_rows((), 0, [], {}, {}, {}, 1, 1)  # rows must be a list
    with pytest.raises(TypeError):
        filter_rows([("{}",)], 0, [], {}, {}, {}, 1, 1)  # a row is (payload, tag)
    with pytest.raises(TypeError):
        filter_rows([], 0, [], {}, {}, {})  # eight arguments


@pytest.mark.skipif(not COMPILED, reason="gateway.privacy._speedups is not built")
def test_the_compiled_filter_refuses_a_second_call_while_one_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A call gives the interpreter away (to the object path, to loads): another
    # thread calling the same filter then must not write into the first's line.
    real_slow = privacy_filter.filter_with_result
    rows = stored(list(realistic_events(3)))
    made: list[privacy_rows.FilterRows] = []

    def reentering(event: Any, partner: PartnerPolicy) -> Any:
        if len(made) == 1:
            made.append(made[0])  # once
            made[0](rows, 0, [], {}, {}, {}, NO_LIMIT, NO_LIMIT)
        return real_slow(event, partner)

    monkeypatch.setattr(privacy_filter, "filter_with_result", reentering)
    partner = policy(**POLICIES["measurement feed"])
    made.append(filter_for("compiled", partner))

    with pytest.raises(RuntimeError, match="in use"):
        made[0](rows, 0, [], {}, {}, {}, NO_LIMIT, NO_LIMIT)
    # Free again once that call has ended.
    assert actual_run(made[0], rows, 0, NO_LIMIT, NO_LIMIT) == expected_run(
        partner, rows, 0, NO_LIMIT, NO_LIMIT
    )
