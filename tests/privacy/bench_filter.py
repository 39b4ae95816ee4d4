"""Throughput of the privacy filter: ``.venv/bin/python -m tests.privacy.bench_filter``.

Not a test (pytest does not collect it): a quick check against the target of
150 000 filtered events per second per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.privacy.filter import decide, filter_event
from gateway.privacy.policy import PartnerPolicy
from gateway.privacy.tcf import encode_tc_string

DEFAULT_FIELDS = frozenset(
    {
        "event_id", "occurred_at", "event_type", "media_type", "content_type", "advertiser_id",
        "campaign_id", "line_item_id", "creative_id", "placement_id", "device.type",
        "device.os", "geo.country", "geo.region",
    }
)  # fmt: skip
IDENTIFIER_FIELDS = frozenset({"user_id", "device.ifa", "household_id", "ip"})
NUM_EVENTS = 20_000
NUM_USERS = 4_000
NUM_TC_STRINGS = 200


def _event(n: int, *, gdpr: int) -> dict[str, Any]:
    consent: dict[str, Any] = {"gdpr": gdpr, "us_privacy": "1YNN", "gpc": False, "coppa": False}
    if gdpr:
        vendors = [793, n % NUM_TC_STRINGS + 1]
        consent["tcf"] = encode_tc_string(purpose_consents=[1, 7], vendor_consents=vendors)
    user = n % NUM_USERS
    return {
        "event_id": f"evt-{n:08d}",
        "occurred_at": "2026-11-24T10:15:00+01:00",
        "event_type": "impression",
        "media_type": "audio",
        "content_type": "podcast",
        "advertiser_id": "adv-1",
        "campaign_id": "cmp-1",
        "line_item_id": "li-1",
        "creative_id": "cr-1",
        "placement_id": "pl-1",
        "content_id": "ep-42",
        "device": {"type": "mobile", "os": "ios", "ifa": f"IFA-{user:08d}", "lmt": False},
        "ip": f"203.0.{user % 256}.{user % 200}",
        "user_agent": "Podcasts/1580.2 CFNetwork/1410.0.3 Darwin/22.6.0",
        "geo": {"country": "DE" if gdpr else "US", "region": "CA", "city": "Oakland"},
        "user_id": f"user-{user}",
        "household_id": f"hh-{user // 3}",
        "consent": consent,
    }


def _policy(fields: frozenset[str]) -> PartnerPolicy:
    return PartnerPolicy(
        partner_slug="bench",
        gvl_vendor_id=793,
        required_tcf_purposes=frozenset({1, 7}),
        require_vendor_consent=True,
        honour_us_privacy_opt_out=True,
        honour_gpc=True,
        honour_coppa=True,
        honour_lmt=True,
        field_allowlist=fields,
        pseudonym_key=b"k" * 32,
    )


def _rate(run: Callable[[dict[str, Any], PartnerPolicy], object], events, policy) -> float:
    for event in events:  # warm the caches, as a long-running worker would be
        run(event, policy)
    started = time.perf_counter()
    for event in events:
        run(event, policy)
    return len(events) / (time.perf_counter() - started)


def main() -> None:
    cases = [
        ("US, default fields", 0, DEFAULT_FIELDS),
        ("US, + ids and ip", 0, DEFAULT_FIELDS | IDENTIFIER_FIELDS),
        ("GDPR, + ids and ip", 1, DEFAULT_FIELDS | IDENTIFIER_FIELDS),
    ]
    for name, gdpr, fields in cases:
        events = [_event(n, gdpr=gdpr) for n in range(NUM_EVENTS)]
        policy = _policy(fields)
        print(
            f"{name:22} decide {_rate(decide, events, policy):>10,.0f}/s   "
            f"filter_event {_rate(filter_event, events, policy):>10,.0f}/s"
        )


if __name__ == "__main__":
    main()
