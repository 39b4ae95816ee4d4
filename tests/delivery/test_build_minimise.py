"""batch_build applies each feed's minimisation: IP prefixes, geo, user agent, key overlap."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest

from gateway.delivery.models import Batch
from gateway.delivery.services import batch_build
from partners.models import Feed, GlobalVendorList, Partner
from partners.services import pseudonym_key_rotate, pseudonym_keys_in_use
from tests.delivery.builders import WINDOW_START, batch_body, make_batch, make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

IN_WINDOW = WINDOW_START + timedelta(seconds=30)
RAW_USER_ID = "user-123"


def built_records(feed: Feed) -> list[dict]:
    batch = make_batch(feed=feed)
    batch_build(batch_id=batch.pk)
    batch = Batch.objects.get(pk=batch.pk)
    return [json.loads(line) for line in batch_body(batch).splitlines()]


def test_the_feed_settings_reach_the_body(partner: Partner, queued: QueuedTasks):
    feed = make_feed(
        partner=partner,
        field_allowlist=["ip", "geo.lat", "geo.lon", "user_agent"],
        ipv4_prefix_bits=8,
        geo_decimals=1,
        user_agent_level="major",
    )
    make_exposure(received_at=IN_WINDOW)

    assert built_records(feed) == [
        {
            "ip": "203.0.0.0",
            "geo": {"lat": 37.8, "lon": -122.3},
            "user_agent": "Podcasts 1580; iOS 16",
        }
    ]


def test_the_defaults_are_ipv4_24_two_decimals_and_the_family(
    partner: Partner, queued: QueuedTasks
):
    feed = make_feed(partner=partner, field_allowlist=["ip", "geo.lat", "user_agent"])
    make_exposure(received_at=IN_WINDOW)

    assert built_records(feed) == [
        {"ip": "203.0.113.0", "geo": {"lat": 37.8}, "user_agent": "Podcasts; iOS"}
    ]


def test_an_ipv6_prefix_of_zero_removes_ipv6_addresses(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, field_allowlist=["event_id", "ip"], ipv6_prefix_bits=0)
    v6 = make_exposure(received_at=IN_WINDOW, ip="2001:db8::1")

    assert built_records(feed) == [{"event_id": v6.event_id}]


def test_during_a_key_rotation_records_carry_the_previous_pseudonyms(
    partner: Partner, queued: QueuedTasks
):
    old_key, _ = pseudonym_keys_in_use(partner_id=partner.pk)
    pseudonym_key_rotate(partner=partner, overlap=timedelta(days=30))
    new_key, previous = pseudonym_keys_in_use(partner_id=partner.pk)
    assert previous == old_key
    feed = make_feed(partner=partner, field_allowlist=["user_id", "device.ifa"])
    make_exposure(received_at=IN_WINDOW)

    [record] = built_records(feed)

    assert record["user_id"] == hmac.new(new_key, RAW_USER_ID.encode(), hashlib.sha256).hexdigest()
    assert record["user_id_previous"] == (
        hmac.new(old_key, RAW_USER_ID.encode(), hashlib.sha256).hexdigest()
    )
    assert set(record["device"]) == {"ifa", "ifa_previous"}


def test_without_a_rotation_there_is_no_previous_pseudonym(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, field_allowlist=["user_id"])
    make_exposure(received_at=IN_WINDOW)

    assert list(built_records(feed)[0]) == ["user_id"]


def test_an_event_batch_records_the_vendor_list_version(partner: Partner, queued: QueuedTasks):
    GlobalVendorList.objects.create(version=7, tcf_policy_version=4, document={})
    make_exposure(received_at=IN_WINDOW)
    batch = make_batch(feed=make_feed(partner=partner))

    batch_build(batch_id=batch.pk)

    assert Batch.objects.get(pk=batch.pk).gvl_version == 7
