"""The ingest contract: checks one exposure record and returns it normalised.

Pure Python, no Django import, so the rules are cheap to test and to benchmark.

The contract is strict. A record with a field the schema does not name is
rejected rather than trimmed: whatever we store may be forwarded to a partner,
so a field nobody reviewed must never get in. Every problem of a record is
reported at once, each as ``{"field": "geo.lat", "code": ..., "detail": ...}``,
so an ad-server team can fix a whole feed from one response.

Optional members may be left out; ``null`` is accepted only where the contract
says so (``consent.gdpr``). Strings without a length in the contract are still
capped (``MAX_TEXT``, ``MAX_CONSENT_STRING``) so a single field cannot carry
megabytes into the database.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypedDict

EVENT_TYPES = frozenset(
    {"impression", "start", "first_quartile", "midpoint", "third_quartile", "complete", "click"}
)
MEDIA_TYPES = frozenset({"audio", "video", "display"})
CONTENT_TYPES = frozenset({"music", "podcast", "video", "other"})

MAX_EVENT_ID = 128
MAX_ID = 64
MAX_USER_AGENT = 1024
MAX_TEXT = 256
# TCF and GPP strings grow with the vendor list; a few KiB is normal, 16 KiB is not.
MAX_CONSENT_STRING = 16 * 1024
MAX_GPP_SECTIONS = 64
# Ad servers' clocks drift and events are batched, so allow some future and a
# long past; anything beyond is a bug upstream, not a late event.
MAX_FUTURE = timedelta(hours=1)
MAX_AGE = timedelta(days=400)

# RFC 3339 date-time (section 5.6): the offset is mandatory.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
# PostgreSQL stores no NUL in text or jsonb, and a lone surrogate (sent as a
# "\ud800" escape) has no UTF-8 form: either would fail the whole batch's insert.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A naive timestamp: an RFC 3339 date-time without its offset.
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?", re.ASCII)


class Problem(TypedDict):
    """One thing wrong with a record: the dotted field path, a code and a sentence."""

    field: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class InvalidJson:
    """An NDJSON line that is not JSON: it stands in the batch as a rejected row."""

    detail: str


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome for one record: the normalised record, or the problems found.

    ``event_id`` is the record's event id when that id is itself valid, so
    errors can name the row; ``occurred_at`` is the parsed instant in UTC.
    """

    record: dict[str, Any] | None
    problems: list[Problem]
    event_id: str | None = None
    occurred_at: datetime | None = None


class _Run:
    """State of one validation: the clock the record is judged against and the problems."""

    __slots__ = ("earliest", "latest", "occurred_at", "problems")

    def __init__(self, now: datetime) -> None:
        self.latest = now + MAX_FUTURE
        self.earliest = now - MAX_AGE
        self.occurred_at: datetime | None = None
        self.problems: list[Problem] = []

    def fail(self, path: str, code: str, detail: str) -> object:
        self.problems.append({"field": path, "code": code, "detail": detail})
        return _INVALID


# Returned by a check after it has recorded a problem.
_INVALID = object()
# A member missing from an object (None is a value: JSON null).
_ABSENT = object()

Check = Callable[[_Run, Any, str], Any]


def exposure_validate(*, record: Any, now: datetime) -> Checked:
    """Check ``record`` against the contract, judging timestamps against ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    run = _Run(now)
    if isinstance(record, InvalidJson):
        run.fail("", "invalid_json", record.detail)
        return Checked(record=None, problems=run.problems)
    normalised = _record(run, record, "")
    event_id = record.get("event_id") if isinstance(record, dict) else None
    if not isinstance(event_id, str) or any(p["field"] == "event_id" for p in run.problems):
        event_id = None
    if run.problems:
        return Checked(record=None, problems=run.problems, event_id=event_id)
    return Checked(record=normalised, problems=[], event_id=event_id, occurred_at=run.occurred_at)


# --- Scalar checks ------------------------------------------------------------
# Each factory returns a check: ``check(run, value, path)`` gives the normalised
# value, or records a problem and returns _INVALID.


def _text(*, min_len: int = 0, max_len: int = MAX_TEXT, printable: bool = False) -> Check:
    def check(run: _Run, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            return run.fail(path, "wrong_type", f"must be a string, not {_json_type(value)}")
        if len(value) < min_len:
            return run.fail(path, "too_short", f"must have at least {min_len} character(s)")
        if len(value) > max_len:
            return run.fail(path, "too_long", f"must have at most {max_len} characters")
        if printable and not value.isprintable():
            return run.fail(path, "not_printable", "must not contain control characters")
        if _UNSTORABLE.search(value):
            return run.fail(path, "invalid_character", "must not contain NUL or lone surrogates")
        return value

    return check


def _choice(choices: frozenset[str]) -> Check:
    listed = ", ".join(sorted(choices))

    def check(run: _Run, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            return run.fail(path, "wrong_type", f"must be a string, not {_json_type(value)}")
        if value not in choices:
            return run.fail(path, "invalid_choice", f"must be one of: {listed}")
        return value

    return check


def _boolean(run: _Run, value: Any, path: str) -> Any:
    if not isinstance(value, bool):
        return run.fail(path, "wrong_type", f"must be a boolean, not {_json_type(value)}")
    return value


def _number(low: float, high: float) -> Check:
    def check(run: _Run, value: Any, path: str) -> Any:
        # bool is an int in Python, but true is not a latitude.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return run.fail(path, "wrong_type", f"must be a number, not {_json_type(value)}")
        if not low <= value <= high:  # also catches NaN
            return run.fail(path, "out_of_range", f"must be between {low:g} and {high:g}")
        return value

    return check


def _att_status(run: _Run, value: Any, path: str) -> Any:
    # iOS App Tracking Transparency: 0 not determined, 1 restricted, 2 denied, 3 authorized.
    if type(value) is int and 0 <= value <= 3:
        return value
    return run.fail(path, "invalid_choice", "must be an integer 0 to 3 (iOS ATT status)")


def _gdpr(run: _Run, value: Any, path: str) -> Any:
    if value is None or (type(value) is int and value in (0, 1)):
        return value
    return run.fail(path, "invalid_choice", "must be 0, 1 or null")


def _gpp_sid(run: _Run, value: Any, path: str) -> Any:
    if not isinstance(value, list):
        return run.fail(path, "wrong_type", f"must be an array, not {_json_type(value)}")
    if len(value) > MAX_GPP_SECTIONS:
        return run.fail(path, "too_long", f"must have at most {MAX_GPP_SECTIONS} items")
    before = len(run.problems)
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int):
            run.fail(f"{path}[{i}]", "wrong_type", f"must be an integer, not {_json_type(item)}")
    return list(value) if len(run.problems) == before else _INVALID


def _ip(run: _Run, value: Any, path: str) -> Any:
    if not isinstance(value, str):
        return run.fail(path, "wrong_type", f"must be a string, not {_json_type(value)}")
    # A zone index ("fe80::1%eth0") names an interface of the sender, not a client.
    if "%" not in value and len(value) <= 45:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
    return run.fail(path, "invalid_ip", "must be an IPv4 or IPv6 address")


def _country(run: _Run, value: Any, path: str) -> Any:
    if not isinstance(value, str):
        return run.fail(path, "wrong_type", f"must be a string, not {_json_type(value)}")
    if len(value) == 2 and value.isascii() and value.isalpha() and value.isupper():
        return value
    return run.fail(path, "invalid_country", "must be an ISO 3166-1 alpha-2 code such as 'US'")


def _occurred_at(run: _Run, value: Any, path: str) -> Any:
    if not isinstance(value, str):
        return run.fail(path, "wrong_type", f"must be a string, not {_json_type(value)}")
    instant = _rfc3339_parse(value)
    if instant is None:
        if _NAIVE.fullmatch(value):
            return run.fail(path, "missing_offset", "must carry a UTC offset such as 'Z'")
        return run.fail(path, "invalid_timestamp", "must be an RFC 3339 date-time")
    if instant > run.latest:
        return run.fail(path, "in_future", "must not be more than 1 hour in the future")
    if instant < run.earliest:
        return run.fail(path, "too_old", f"must not be older than {MAX_AGE.days} days")
    run.occurred_at = instant
    return _utc_format(instant)


def _rfc3339_parse(value: str) -> datetime | None:
    """The instant ``value`` names in UTC, or None when it is not an RFC 3339 date-time."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        tz = UTC
    else:
        if int(off_h) > 23 or int(off_m) > 59:
            return None
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        tz = timezone(-offset if sign == "-" else offset)
    # Digits past microseconds are truncated: the database keeps microseconds.
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
        return local.astimezone(UTC)
    # 30 February; second 60 (a leap second has no datetime); year 9999 shifted past 9999.
    except (ValueError, OverflowError):
        return None


def _utc_format(instant: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``: isoformat omits the fraction when it is zero."""
    return instant.replace(tzinfo=None).isoformat() + "Z"


def _key_label(key: str) -> str:
    """An unknown key as it can be echoed back: escaped if unprintable, and short."""
    if not key.isprintable():
        # repr escapes control characters and lone surrogates, which JSON output rejects.
        key = repr(key)[1:-1]
    return key if len(key) <= MAX_TEXT else key[:MAX_TEXT] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --- Objects ------------------------------------------------------------------


def _object(prefix: str, members: dict[str, tuple[Check, bool]]) -> Check:
    """A check for an object with exactly ``members`` (key -> (check, required))."""
    # (key, path, check, required), paths precomputed: this loop runs for every record.
    schema = tuple(
        (key, f"{prefix}.{key}" if prefix else key, check, required)
        for key, (check, required) in members.items()
    )
    known = frozenset(members)

    def check(run: _Run, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            return run.fail(path, "wrong_type", f"must be an object, not {_json_type(value)}")
        problems = run.problems
        before = len(problems)
        normalised: dict[str, Any] = {}
        present = 0
        for key, member_path, member_check, required in schema:
            member = value.get(key, _ABSENT)
            if member is _ABSENT:
                if required:
                    run.fail(member_path, "required", "is required")
                continue
            present += 1
            checked = member_check(run, member, member_path)
            if checked is not _INVALID:
                normalised[key] = checked
        # Every key was checked above unless the object has keys we do not know.
        if len(value) > present:
            for key in sorted(value.keys() - known):
                label = _key_label(key)
                run.fail(
                    f"{prefix}.{label}" if prefix else label,
                    "unknown_field",
                    "is not part of the contract",
                )
        return normalised if len(problems) == before else _INVALID

    return check


REQUIRED, OPTIONAL = True, False
_id = _text(min_len=1, max_len=MAX_ID)
_short = _text()
_consent_string = _text(max_len=MAX_CONSENT_STRING)

_record = _object(
    "",
    {
        "event_id": (_text(min_len=1, max_len=MAX_EVENT_ID, printable=True), REQUIRED),
        "occurred_at": (_occurred_at, REQUIRED),
        "event_type": (_choice(EVENT_TYPES), REQUIRED),
        "media_type": (_choice(MEDIA_TYPES), REQUIRED),
        "content_type": (_choice(CONTENT_TYPES), REQUIRED),
        "advertiser_id": (_id, REQUIRED),
        "campaign_id": (_id, REQUIRED),
        "line_item_id": (_id, REQUIRED),
        "creative_id": (_id, REQUIRED),
        "placement_id": (_id, OPTIONAL),
        "content_id": (_id, OPTIONAL),
        "device": (
            _object(
                "device",
                {
                    "type": (_short, REQUIRED),
                    "os": (_short, REQUIRED),
                    "ifa": (_short, OPTIONAL),
                    "lmt": (_boolean, REQUIRED),
                    "atts": (_att_status, OPTIONAL),
                },
            ),
            REQUIRED,
        ),
        "ip": (_ip, REQUIRED),
        "user_agent": (_text(max_len=MAX_USER_AGENT), REQUIRED),
        "geo": (
            _object(
                "geo",
                {
                    "country": (_country, REQUIRED),
                    "region": (_short, OPTIONAL),
                    "city": (_short, OPTIONAL),
                    "postal_code": (_short, OPTIONAL),
                    "lat": (_number(-90, 90), OPTIONAL),
                    "lon": (_number(-180, 180), OPTIONAL),
                },
            ),
            REQUIRED,
        ),
        "user_id": (_short, REQUIRED),
        "household_id": (_short, OPTIONAL),
        "consent": (
            _object(
                "consent",
                {
                    "gdpr": (_gdpr, OPTIONAL),
                    "tcf": (_consent_string, OPTIONAL),
                    "gpp": (_consent_string, OPTIONAL),
                    "gpp_sid": (_gpp_sid, OPTIONAL),
                    "us_privacy": (_short, OPTIONAL),
                    "gpc": (_boolean, OPTIONAL),
                    "coppa": (_boolean, OPTIONAL),
                },
            ),
            REQUIRED,
        ),
    },
)
