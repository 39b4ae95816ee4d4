"""The compiled row filter's byte path writes exactly the object path's lines from stored text.

The byte path (``_speedups.c``, "Byte path") takes a row only when it can vouch
for it, and hands every other row to the object path. These tests feed each row
more than once (the first time teaches the filter its signal key and route, the
next ones go the byte path) in every written form JSON allows, and compare with
the Python ``rows.RowFilter`` and the plain contract of ``test_rows``: the same
lines, counts and stops, and the same errors for text orjson does not read.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.privacy import geo, network, transform
from gateway.privacy import rows as privacy_rows
from gateway.privacy.policy import PartnerPolicy

from .engine_builders import policy
from .test_fast_paths import COMPILED, POLICIES, SETTINGS, events, realistic_events
from .test_rows import NO_LIMIT, OPTION, _json_value, actual_run, expected_run, filter_for

pytestmark = pytest.mark.skipif(not COMPILED, reason="gateway.privacy._speedups is not built")

SPACES = ("", " ", "\n", "\t ", "\r\n  ")


def render(value: Any, rng: random.Random) -> str:
    """``value`` as JSON text in one of the many ways JSON can be written.

    Keys in any order, a decoy member before a key's real one (the last of
    duplicates counts), any whitespace, escaped or raw non-ASCII text, escaped
    solidus, -0, floats with exponents.
    """

    def space() -> str:
        return rng.choice(SPACES)

    if isinstance(value, dict):
        items = list(value.items())
        if rng.random() < 0.5:
            rng.shuffle(items)
        members = []
        for key, item in items:
            if rng.random() < 0.1:
                members.append(f"{json.dumps(key)}:{render(rng.choice([0, 'decoy', None]), rng)}")
            members.append(f"{space()}{json.dumps(key)}{space()}:{space()}{render(item, rng)}")
        return "{" + ",".join(members) + space() + "}"
    if isinstance(value, list):
        return "[" + ",".join(space() + render(item, rng) + space() for item in value) + "]"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
        return text.replace("/", "\\/") if rng.random() < 0.3 else text
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return "-0" if value == 0 and rng.random() < 0.3 else str(value)
    if isinstance(value, float):
        return f"{value:.17e}" if rng.random() < 0.5 else json.dumps(value)
    raise TypeError(type(value))


def rows_twice(texts: list[str]) -> list[tuple[str, str]]:
    rows = [(text, f"tag-{n % 3}") for n, text in enumerate(texts)]
    return rows + rows


def assert_same_as_object_path(partner: PartnerPolicy, rows: list[tuple[str, str]]) -> int:
    """Compiled and Python filters agree with the contract; the rows the byte path took."""
    compiled = filter_for("compiled", partner)
    expected = expected_run(partner, rows, 0, NO_LIMIT, NO_LIMIT)
    assert actual_run(compiled, rows, 0, NO_LIMIT, NO_LIMIT) == expected
    assert actual_run(filter_for("python", partner), rows, 0, NO_LIMIT, NO_LIMIT) == expected
    taken: int = compiled.bytes_rows  # type: ignore[attr-defined]
    return taken


def assert_same_as_python_computes(
    policy_settings: dict[str, Any],
    rows: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    partner: PartnerPolicy,
) -> int:
    """As assert_same_as_object_path, and the same as the object path without C computes.

    The object path itself rounds coordinates and truncates addresses in C; the
    reference here is the Python helpers' answer (a policy of its own, ``policy_settings``
    again, whose transforms are made while the compiled ones are out of reach).
    """
    taken = assert_same_as_object_path(partner, rows)
    with monkeypatch.context() as python_only:
        python_only.setattr(geo, "_speedups", None)
        python_only.setattr(network, "_speedups", None)
        reference = expected_run(policy(**policy_settings), rows, 0, NO_LIMIT, NO_LIMIT)
    assert actual_run(filter_for("compiled", partner), rows, 0, NO_LIMIT, NO_LIMIT) == reference
    return taken


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_realistic_rows_go_the_byte_path_where_it_can_and_give_the_same_lines(name: str) -> None:
    partner = policy(**POLICIES[name])
    rng = random.Random(3)
    texts = [render(_json_value(event), rng) for event in realistic_events(600)]
    rows = rows_twice(texts)
    taken = assert_same_as_object_path(partner, rows)
    if name in ("whole objects", "rotation"):
        # A whole object kept around a transform, a second pseudonym: records are made
        # the Python way only; the byte path drops what the route says to drop.
        dropped = sum(expected_run(partner, rows, 0, NO_LIMIT, NO_LIMIT)[2].values())
        assert dropped // 2 <= taken <= dropped
    else:
        assert taken >= 600  # every row the second time round (written anew, each the first)


@settings(SETTINGS)
@given(
    event_list=st.lists(events, min_size=1, max_size=6),
    rng=st.randoms(use_true_random=False),
    name=st.sampled_from(sorted(POLICIES)),
)
def test_any_event_in_any_written_form_gives_the_object_paths_line(
    event_list: list[Any], rng: random.Random, name: str
) -> None:
    texts = [render(_json_value(event), rng) for event in event_list]
    assert_same_as_object_path(policy(**POLICIES[name]), rows_twice(texts))


def base_event() -> dict[str, Any]:
    return {
        "event_id": "evt-1",
        "user_id": "user-1",
        "household_id": "hh-1",
        "ip": "203.0.113.77",
        "user_agent": "Spotify/8.9.1 iOS/17.1.1 (iPhone15,2)",
        "device": {"type": "mobile", "os": "ios", "ifa": "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
        "geo": {"country": "US", "region": "CA", "lat": 37.77493, "lon": -122.41942},
        "consent": {"gdpr": 0, "us_privacy": "1YNN", "gpc": False, "coppa": False},
    }


def with_path(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``event`` with ``path`` set to ``value`` (removed for ``...``)."""
    copy = json.loads(json.dumps(event))
    *parents, last = path.split(".")
    target = copy
    for part in parents:
        target = target[part]
    if value is ...:
        target.pop(last, None)
    else:
        target[last] = value
    return copy


SIGNAL_VARIANTS = [
    *(("device.ifa", value) for value in ("", "x", None, ..., 0, "\u0000")),
    *(("device.atts", value) for value in (0, 1, 2, 3, 4, "1", 1.0, None)),
    *(("device.lmt", value) for value in (0, 1, True, False, None, 0.0, "0", "1", [], ...)),
    *(("geo.region", value) for value in ("ca", "US-CA", "CA", 5, None, ...)),
    *(("geo.country", value) for value in ("us", "US", "USA", "DE", None, ...)),
    ("geo", "somewhere"),
    ("geo", None),
    ("geo", []),
    ("device", "phone"),
    ("device", None),
    ("consent", None),
    ("consent", {"gdpr": 1}),
    ("consent", {"us_privacy": "1YNN", "gdpr": 0, "addtl_consent": "1~"}),
    ("consent", {"gdpr": 0, "coppa": True}),
    ("consent", {"gdpr": 0, "gpp_sid": [7, 8], "gpp": "DBABL~BVQqAAAAAgA.QA"}),
    ("consent", {"gdpr": True}),
]


@pytest.mark.parametrize("name", ["measurement feed", "coarse", "no key"])
def test_every_signal_the_key_reads_tells_rows_apart(name: str) -> None:
    """Rows that differ only in what signal_key reads never share a route on the byte path."""
    rng = random.Random(5)
    texts = []
    for path, value in SIGNAL_VARIANTS:
        event = with_path(base_event(), path, value)
        texts += [render(event, rng), render(event, rng)]
    taken = assert_same_as_object_path(policy(**POLICIES[name]), rows_twice(texts))
    assert taken > 0


@pytest.mark.parametrize(
    "odd",
    [
        "123456789012345678901234567890",  # orjson makes a float of it
        "1E2",
        "-0",
        "-0.0",
        "1e99",
        "1.5e-7",
        '"\\ud83d\\ude00"',  # an escaped surrogate pair
        '"caf\\u00e9 \\"quoted\\" \\\\ \\/ \\b\\f\\n\\r\\t"',
        '"caf\u00e9 \u2028"',
        "[" * 40 + "]" * 40,  # deeper than the scanner goes
        '{"a": {"b": [1, {"c": null}]}}',
    ],
)
def test_odd_but_valid_values_are_written_as_orjson_writes_them(odd: str) -> None:
    """Kept (event_id) and skipped (content_id) fields with values orjson reads its own way."""
    compact = orjson.dumps(base_event()).decode()
    texts = [
        compact[:-1] + f',"event_id":{odd}}}',
        compact[:-1] + f',"content_id":{odd}}}',
        compact[:-1] + f',"user_id":{odd}}}',
    ]
    assert_same_as_object_path(policy(**POLICIES["measurement feed"]), rows_twice(texts))


@pytest.mark.parametrize(
    "bad",
    [
        "01",
        "1.",
        ".5",
        "+1",
        "1e",
        "1e400",
        "-",
        "tru",
        "NaN",
        "Infinity",
        '"\\x"',
        '"\\u12"',
        '"\\ud800"',  # a lone surrogate
        '"\x01"',
        "[1,]",
        '{"a" 1}',
        "'a'",
        '"open',
    ],
)
def test_text_orjson_does_not_read_fails_as_it_always_did(bad: str) -> None:
    """After rows with the same signals (the byte path ready for them), a bad row still raises."""
    compact = orjson.dumps(base_event()).decode()
    for text in (compact[:-1] + f',"content_id":{bad}}}', compact[:-1] + ",}", compact + "x"):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(text)
        compiled = assert_raises_after_good_rows(text)
        # The first good row leaves a route, the second its fingerprint, the third
        # goes the byte path; the bad one does not.
        assert compiled.bytes_rows == 1  # type: ignore[attr-defined]


def assert_raises_after_good_rows(text: str) -> Any:
    """Three good rows with ``text``'s signals, then ``text``: both filters raise as orjson.

    Returns the compiled filter, for its counts.
    """
    good = [(orjson.dumps(base_event()).decode(), "tag")] * 3
    filters = {}
    for kind in ("compiled", "python"):
        filter_rows = filters[kind] = filter_for(kind, policy(**POLICIES["measurement feed"]))
        with pytest.raises(orjson.JSONDecodeError):
            filter_rows([*good, (text, "tag")], 0, [], {}, {}, {}, NO_LIMIT, NO_LIMIT)
    return filters["compiled"]


IDENTIFIERS = [
    "user-1",
    "",
    "caf\u00e9-\U0001f600",  # raw non-ASCII: its UTF-8 is hashed as written
    '\\escaped/"',
    "x" * 56,  # an HMAC message past one SHA-256 block
    7,
    1.5,
    None,
    True,
    ["user-1"],
    {"id": "user-1"},
]
ADDRESSES = [
    "203.0.113.77",
    "0.0.0.0",
    "255.255.255.255",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    " 1.2.3.4",
    "2001:db8::8a2e:370:7334",
    "::ffff:203.0.113.77",
    "not an address",
    "",
    "1" * 60,
    4,
    None,
]


@pytest.mark.parametrize("ipv4_bits", [0, 8, 24, 32])
@pytest.mark.parametrize("accelerated", [True, False])
def test_identifiers_and_addresses_computed_in_c_are_the_python_computes(
    ipv4_bits: int, accelerated: bool
) -> None:
    """Pseudonyms and IPv4 prefixes made from the text (a cache miss) match the object path.

    With the SHA extensions (where the CPU has them) and with the portable compression.
    """
    from gateway.privacy.speedups import speedups_load

    speedups = speedups_load()
    events = []
    for n, identifier in enumerate(IDENTIFIERS * 2):
        event = with_path(base_event(), "user_id", identifier)
        event = with_path(event, "device.ifa", identifier)
        events.append(with_path(event, "ip", ADDRESSES[n % len(ADDRESSES)]))
    events += [with_path(base_event(), "ip", address) for address in ADDRESSES]
    texts = [orjson.dumps(event).decode() for event in events]
    partner = policy(**{**POLICIES["measurement feed"], "ipv4_prefix_bits": ipv4_bits})
    speedups.sha256_accelerate(accelerated)
    try:
        # Every row the second time round: a miss computed in C takes no detour.
        assert assert_same_as_object_path(partner, rows_twice(texts)) >= len(texts)
    finally:
        speedups.sha256_accelerate(True)  # as at import


# IPv6 addresses the byte path truncates in C: every embedding of an IPv4 address,
# mapped ones, each way of writing the same address.
SHORT_IPV6 = [
    "2001:db8::8a2e:370:7334", "2001:DB8:0:0:0:0:0:1", "2001:0db8:0000:0000:0000:ff00:0042:8329",
    "fe80::1", "::", "::1", "ff02::1:ff00:1", "::ffff:203.0.113.77", "::ffff:0.0.0.0",
    "::FFFF:cb00:714d", "2002:cb00:714d::1", "64:ff9b::203.0.113.77", "64:ff9b:1:cb00:714d::",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "::ffff:0:203.0.113.77", "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:1.2.3.4", "2400:cb00:2048:1::c629:d7a2",
]  # fmt: skip
# Texts that are not addresses, IPv4-compatible ones (the Python code writes them), and
# texts with non-ASCII characters or escapes (the cache and the truncator's call).
OTHER_IPV6 = [
    "::203.0.113.77", "::5", "fe80::1%eth0", "1::2::3", "2001:db8::g", ":", "::ffff:1.2.3",
    "caf\u00e9::1", r"caf\u00e9::1", r"\u0032001:db8::1", "2001:db8::1 ", "1:2:3:4:5:6:7:8:9",
    5, None,
]  # fmt: skip
# (Texts with a backslash go into the JSON as written: escapes.)


@pytest.mark.parametrize("ipv4_bits", [0, 24, 32])
@pytest.mark.parametrize("ipv6_bits", [0, 32, 48, 64, 128])
def test_ipv6_addresses_truncated_in_c_are_the_python_truncation(
    ipv4_bits: int, ipv6_bits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_settings = {
        **POLICIES["measurement feed"],
        "ipv4_prefix_bits": ipv4_bits,
        "ipv6_prefix_bits": ipv6_bits,
    }
    compact = orjson.dumps(base_event()).decode()
    assert '"ip":"203.0.113.77"' in compact

    def json_text(address: Any) -> str:
        if isinstance(address, str) and "\\" in address:
            return f'"{address}"'  # its escapes as written
        return orjson.dumps(address).decode()

    def texts_of(addresses: list[Any]) -> list[str]:
        return [
            compact.replace('"ip":"203.0.113.77"', f'"ip":{json_text(address)}')
            for address in addresses
        ]

    partner = policy(**policy_settings)
    texts = texts_of(SHORT_IPV6)
    taken = assert_same_as_python_computes(policy_settings, rows_twice(texts), monkeypatch, partner)
    assert taken >= len(texts)
    assert cached_texts(partner, "ip") == 0
    others = rows_twice(texts_of(OTHER_IPV6) + texts)
    partner = policy(**policy_settings)
    taken = assert_same_as_python_computes(policy_settings, others, monkeypatch, partner)
    assert taken >= len(OTHER_IPV6)
    assert cached_texts(partner, "ip") > 0


# Coordinates the byte path rounds in C: at most 15 digits, no exponent, and (rounded)
# zero or at least 1e-4. Ties at every number of decimals, the limits, signed zeros.
SHORT_COORDINATES = [
    "37.77493", "-122.41942", "0", "-0", "0.0", "-0.0", "-0.001", "0.004", "90", "-90",
    "90.0", "90.000001", "-90.0000001", "180", "-180.0", "180.0000000001", "0.5", "1.5",
    "2.5", "-2.5", "0.125", "0.135", "2.675", "-2.675", "1.005", "4.35", "89.995",
    "-89.995", "179.9999995", "0.0005", "0.00015", "123.456789012345", "-0.4999999",
    "45.0000005", "7", "-7", "179",
]  # fmt: skip
# Coordinates the text cache and the Python rounder answer for.
OTHER_COORDINATES = [
    "1e1", "1.5E-3", "12.5e0", "-0e0", "123.4567890123456", "0.00005", "0.00004",
    "-0.0000999", "0.0000001", "1e300", '"37.7"', '""', "true", "null", "[1.5]",
    '{"deg": 1}', "4.350000000000000000001",
]  # fmt: skip


def coordinate_texts(values: list[str]) -> list[str]:
    """Events whose latitude and longitude have the text of ``values`` (lon reversed)."""
    compact = orjson.dumps(with_path(base_event(), "geo.lat", 0)).decode()
    compact = compact.replace('"lon":-122.41942', '"lon":1')
    assert '"lat":0' in compact and '"lon":1' in compact
    return [
        compact.replace('"lat":0', f'"lat":{lat}').replace('"lon":1', f'"lon":{lon}')
        for lat, lon in zip(values, reversed(values), strict=True)
    ]


def random_coordinates(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        value = rng.uniform(-181.0, 181.0)
        written = f"{value:.{rng.randrange(0, 12)}f}"
        texts.append(written if written.lstrip("-") != "0" or rng.random() < 0.5 else "0.25")
    return texts


@pytest.mark.parametrize("decimals", range(7))
def test_coordinates_rounded_in_c_are_the_python_rounding(
    decimals: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short coordinates are rounded from their text without the cache; the rest through it.

    Either way, the lines are the object path's and round_coordinate's: round() with
    ties to even on the binary value, written as orjson writes the float, a rounded
    zero unsigned.
    """
    policy_settings = {**POLICIES["measurement feed"], "geo_decimals": decimals}
    partner = policy(**policy_settings)
    texts = coordinate_texts(SHORT_COORDINATES + random_coordinates(400, seed=decimals))
    taken = assert_same_as_python_computes(policy_settings, rows_twice(texts), monkeypatch, partner)
    assert taken >= len(texts)
    assert cached_texts(partner, transform.LATITUDE_PATH) == 0
    assert cached_texts(partner, transform.LONGITUDE_PATH) == 0
    others = rows_twice(coordinate_texts(OTHER_COORDINATES) + texts)
    partner = policy(**policy_settings)
    taken = assert_same_as_python_computes(policy_settings, others, monkeypatch, partner)
    assert taken >= len(OTHER_COORDINATES)
    assert cached_texts(partner, transform.LATITUDE_PATH) > 0


def cached_texts(partner: PartnerPolicy, path: str) -> int:
    """Entries in the text cache of ``path``'s transform (kept on the policy object)."""
    fields = dict(transform._policy_transforms(partner).fields)
    size: int = len(fields[path].text_cache)  # type: ignore[attr-defined]
    return size


@pytest.mark.parametrize(
    "inserted",
    ['\\"', "\\\\", "\\u00e9", "\\n", "\u00e9", "\x7f", "\x1f", "\x00", "\t", '"'],
)
def test_strings_are_read_alike_whatever_byte_of_a_word_holds_an_escape_or_a_control(
    inserted: str,
) -> None:
    """The string scan reads plain text 8 bytes at a time: each lane of a word is tried.

    Escapes and raw non-ASCII must be read, a raw control character or a stray quote
    must fail as orjson fails.
    """
    compact = orjson.dumps(base_event()).decode()
    plain = "abcdefghijklmnopqrstuvwx"
    for at in range(len(plain) + 1):
        value = plain[:at] + inserted + plain[at:]
        for field in ("event_id", "user_id", "user_agent", "content_id"):
            text = compact[:-1] + f',"{field}":"{value}"}}'
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError:
                assert_raises_after_good_rows(text)
                continue
            assert_same_as_object_path(policy(**POLICIES["measurement feed"]), rows_twice([text]))


def test_keys_with_an_escape_in_any_byte_of_a_word_are_the_keys_they_spell() -> None:
    """An escaped key is the object path's; missed, "event_i\\u0064" would not be event_id."""
    compact = orjson.dumps(base_event()).decode()
    for key in ("event_id", "user_agent", "household_id"):
        for at in range(len(key)):
            escaped = key[:at] + f"\\u{ord(key[at]):04x}" + key[at + 1 :]
            text = compact.replace(f'"{key}":', f'"{escaped}":')
            assert orjson.loads(text) == base_event()
            assert_same_as_object_path(policy(**POLICIES["measurement feed"]), rows_twice([text]))


def test_denied_activities_leave_their_fields_out_on_the_byte_path() -> None:
    """The measurement feed denies precise geo in DE and user ids under COPPA."""
    german = with_path(with_path(base_event(), "geo.country", "DE"), "geo.region", "BE")
    german["consent"] = {"gdpr": 0}
    child = with_path(base_event(), "consent.coppa", True)
    rng = random.Random(9)
    texts = [render(event, rng) for event in (german, child, base_event())]
    partner = policy(**POLICIES["measurement feed"])
    rows = rows_twice(texts)
    assert assert_same_as_object_path(partner, rows) >= 3
    lines = actual_run(filter_for("compiled", partner), rows, 0, NO_LIMIT, NO_LIMIT)[1]
    records = [orjson.loads(line) for line in lines]
    assert any("lat" not in record.get("geo", {}) for record in records)
    assert any("user_id" not in record for record in records)


def test_small_caches_turn_over_and_change_no_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text caches of one entry a generation: every value turns them over."""
    for name in (
        "PSEUDONYM_CACHE_SIZE",
        "IP_CACHE_SIZE",
        "USER_AGENT_CACHE_SIZE",
        "COORDINATE_CACHE_SIZE",
    ):
        monkeypatch.setattr(transform, name, 2)
    rng = random.Random(11)
    texts = [render(_json_value(event), rng) for event in realistic_events(400)]
    assert assert_same_as_object_path(policy(**POLICIES["measurement feed"]), rows_twice(texts))


@pytest.mark.parametrize(
    ("dumps", "option"),
    [
        (lambda record, option: orjson.dumps(record, option=option), OPTION),
        (orjson.dumps, orjson.OPT_SORT_KEYS),  # no newline: lines the byte path does not write
        (orjson.dumps, OPTION | orjson.OPT_INDENT_2),
    ],
)
def test_the_byte_path_stays_off_for_other_serialisers(dumps: Any, option: int) -> None:
    partner = policy(**POLICIES["measurement feed"])
    made = privacy_rows.row_filter(partner, loads=orjson.loads, dumps=dumps, option=option)
    rows = rows_twice([orjson.dumps(base_event()).decode()])
    actual_run(made, rows, 0, NO_LIMIT, NO_LIMIT)
    assert made.bytes_rows == 0  # type: ignore[attr-defined]


def test_a_text_cache_holds_at_least_one_entry() -> None:
    from gateway.privacy import _speedups  # type: ignore[attr-defined]

    with pytest.raises(ValueError):
        _speedups.TextCache(0)
    assert len(_speedups.TextCache(10)) == 0


MUTATIONS = '{}[],:"\\ \t0123456789eE.+-tfnu\x00\x1f\u00e9'


@settings(SETTINGS)
@given(rng=st.randoms(use_true_random=False), edits=st.integers(1, 3))
def test_mutated_text_reads_as_orjson_reads_it_or_fails_as_it_fails(
    rng: random.Random, edits: int
) -> None:
    """Characters deleted from or put into a valid row: the same line, or the same error."""
    text = render(base_event(), rng)
    for _ in range(edits):
        at = rng.randrange(len(text))
        if rng.random() < 0.5:
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + rng.choice(MUTATIONS) + text[at:]
    warm = [(orjson.dumps(base_event()).decode(), "tag")] * 3
    rows = [*warm, (text, "tag"), (text, "tag")]
    outcomes = []
    for kind in ("compiled", "python"):
        try:
            outcome: Any = actual_run(
                filter_for(kind, policy(**POLICIES["measurement feed"])),
                rows,
                0,
                NO_LIMIT,
                NO_LIMIT,
            )
        except orjson.JSONDecodeError:
            outcome = "JSONDecodeError"
        outcomes.append(outcome)
    assert outcomes[0] == outcomes[1]
