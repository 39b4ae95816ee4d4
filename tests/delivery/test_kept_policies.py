"""A worker keeps a build's policy for its next build of an unchanged configuration.

What the filter learnt stays on the policy (decisions per signal key, routes,
pseudonyms, the compiled row filter); these tests hold that a kept policy
changes no byte of a body, that any change of configuration gets a new one,
and that a policy is never lent to two builds at once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest

from gateway.delivery import build as build_module
from gateway.delivery import kept_policies
from gateway.delivery.body import NDJSON_OPTIONS
from gateway.delivery.kept_policies import kept_policy, kept_policy_count
from gateway.delivery.models import Batch
from gateway.delivery.services import batch_build
from gateway.privacy.rows import row_filter
from partners.models import ConsentRule, Feed, Partner
from partners.services import pseudonym_key_rotate
from tests.delivery.builders import WINDOW_START, batch_body, make_batch, make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed
from tests.privacy.test_fast_paths import COMPILED

pytestmark = pytest.mark.django_db

IN_WINDOW = WINDOW_START + timedelta(seconds=30)
FIELDS = ["event_id", "user_id", "device.ifa", "ip", "user_agent", "geo.country"]


def built(feed: Feed, *, sequence: int) -> tuple[Batch, list[dict[str, Any]]]:
    """The window built again as a new batch (the one before makes way: one per window)."""
    Batch.objects.filter(feed=feed).delete()
    batch = make_batch(feed=feed, sequence=sequence)
    batch_build(batch_id=batch.pk)
    batch = Batch.objects.get(pk=batch.pk)
    return batch, [json.loads(line) for line in batch_body(batch).splitlines()]


def borrowed(feed: Feed) -> Any:
    """The policy a build of ``feed`` would use now, given back as a successful build does."""
    with kept_policy(partner=feed.partner, feed=feed) as policy:
        return policy


@pytest.fixture
def feed(partner: Partner) -> Feed:
    return make_feed(partner=partner, field_allowlist=FIELDS)


def test_the_next_build_uses_the_policy_the_last_one_kept(feed: Feed, queued: QueuedTasks):
    first = borrowed(feed)
    second = borrowed(feed)

    assert second is first
    assert kept_policy_count() == 1


@pytest.mark.skipif(not COMPILED, reason="gateway.privacy._speedups is not built")
def test_a_kept_policy_keeps_its_compiled_row_filter(feed: Feed):
    policy = borrowed(feed)
    made = row_filter(policy, loads=orjson.loads, dumps=orjson.dumps, option=NDJSON_OPTIONS)

    again = row_filter(
        borrowed(feed), loads=orjson.loads, dumps=orjson.dumps, option=NDJSON_OPTIONS
    )

    assert again is made


def test_a_build_with_a_kept_policy_writes_the_bytes_a_fresh_one_writes(
    feed: Feed, queued: QueuedTasks
):
    for n in range(20):
        make_exposure(received_at=IN_WINDOW, user_id=f"listener-{n % 7}")
    fresh_batch, fresh_records = built(feed, sequence=1)
    kept = borrowed(feed)  # the first build's, as the second will find it

    kept_batch, kept_records = built(feed, sequence=2)

    assert borrowed(feed) is kept
    assert kept_records == fresh_records
    assert kept_batch.body_sha256 == fresh_batch.body_sha256
    assert kept_batch.dropped_by_reason == fresh_batch.dropped_by_reason
    assert kept_policy_count() == 1


def test_a_narrower_allowlist_is_a_new_policy_and_the_field_is_gone(
    feed: Feed, queued: QueuedTasks
):
    make_exposure(received_at=IN_WINDOW)
    _, [before] = built(feed, sequence=1)
    assert "user_id" in before
    kept = borrowed(feed)

    feed.field_allowlist = ["event_id", "ip"]
    feed.save(update_fields=["field_allowlist"])
    _, [after] = built(feed, sequence=2)

    assert sorted(after) == ["event_id", "ip"]
    assert borrowed(feed) is not kept


def test_a_rotated_pseudonym_key_is_a_new_policy_and_new_pseudonyms(
    feed: Feed, partner: Partner, queued: QueuedTasks
):
    make_exposure(received_at=IN_WINDOW)
    _, [before] = built(feed, sequence=1)

    pseudonym_key_rotate(partner=partner, overlap=timedelta(0))
    _, [after] = built(feed, sequence=2)

    assert after["user_id"] != before["user_id"]


def test_a_changed_consent_rule_is_a_new_policy(feed: Feed, partner: Partner):
    kept = borrowed(feed)

    ConsentRule.objects.update_or_create(
        partner=partner, defaults={"required_tcf_purposes": [1, 7, 9]}
    )

    assert borrowed(feed) is not kept


def test_another_gvl_object_is_a_new_policy_even_for_equal_values(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
):
    kept = borrowed(feed)
    fresh = kept_policies.policy_for(partner=feed.partner, feed=feed)
    assert fresh == kept
    # The parsed GVL takes no part in a policy's equality: a list parsed again
    # (a snapshot replaced under the same version) must not find the old decisions.
    monkeypatch.setattr(kept_policies, "policy_for", lambda **_: _with_gvl(fresh, object()))

    assert borrowed(feed) is not kept


def _with_gvl(policy: Any, gvl: object) -> Any:
    return replace(policy, gvl=gvl)


def test_a_policy_in_use_is_lent_to_no_other_build(feed: Feed):
    kept = borrowed(feed)

    with (
        kept_policy(partner=feed.partner, feed=feed) as first,
        kept_policy(partner=feed.partner, feed=feed) as second,
    ):
        assert first is kept
        assert second is not kept
        assert second == kept

    assert kept_policy_count() == 1


def test_a_failed_build_gives_its_policy_back_to_no_one(
    feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    kept = borrowed(feed)
    make_exposure(received_at=IN_WINDOW)

    def failing(**_: object) -> None:
        raise RuntimeError("storage down")

    monkeypatch.setattr(build_module, "_events_bodies", failing)
    with pytest.raises(RuntimeError):
        batch_build(batch_id=make_batch(feed=feed).pk)

    assert kept_policy_count() == 0
    assert borrowed(feed) is not kept


def test_no_policy_is_kept_when_the_setting_says_none(feed: Feed, settings: Any):
    settings.DELIVERY_KEPT_POLICIES = 0

    first = borrowed(feed)

    assert kept_policy_count() == 0
    assert borrowed(feed) is not first


def test_the_least_recently_used_policy_makes_way(partner: Partner, settings: Any):
    settings.DELIVERY_KEPT_POLICIES = 2
    feeds = [make_feed(partner=partner, field_allowlist=[field]) for field in FIELDS[:3]]
    first, second, third = (borrowed(feed) for feed in feeds)

    assert kept_policy_count() == 2
    assert borrowed(feeds[2]) is third
    assert borrowed(feeds[1]) is second
    assert borrowed(feeds[0]) is not first


def test_a_policy_idle_for_too_long_is_dropped(
    feed: Feed, settings: Any, monkeypatch: pytest.MonkeyPatch
):
    settings.DELIVERY_KEPT_POLICY_IDLE_SECONDS = 60
    clock = [1000.0]
    monkeypatch.setattr(kept_policies.time, "monotonic", lambda: clock[0])
    kept = borrowed(feed)

    clock[0] += 59
    assert borrowed(feed) is kept
    clock[0] += 61

    assert borrowed(feed) is not kept
