"""Feeds with max_batch_events: a larger claim is built and delivered in parts, each event once."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
import responses
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from gateway.delivery import build
from gateway.delivery import parts as parts_module
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.replay import SkipReason, batches_rebuild
from gateway.delivery.services import batch_build, batch_send, batch_supersede
from gateway.delivery.storage import body_read
from gateway.privacy import rows as privacy_rows
from gateway.privacy.filter import Reason
from partners.models import Feed, FeedShape, Partner
from partners.services import signing_secret_current
from tests.delivery.builders import (
    WINDOW_START,
    batch_body,
    first_signature_verified,
    make_batch,
    make_exposure,
)
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_shared_store")]

IN_WINDOW = WINDOW_START + timedelta(seconds=30)
URL = "http://127.0.0.1:9/ingest"
DROPPED = {"gdpr": 1}  # no TC string: dropped for tcf_consent_missing


@pytest.fixture(autouse=True, params=["compiled", "python"])
def row_filter_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test with the compiled row filter (where built), then with the Python one."""
    if request.param == "compiled" and privacy_rows._speedups is None:
        pytest.skip("gateway.privacy._speedups is not built")
    if request.param == "python":
        monkeypatch.setattr(privacy_rows, "_speedups", None)
    return str(request.param)


@pytest.fixture
def capped_feed(partner: Partner) -> Feed:
    return make_feed(partner=partner, name="capped", max_batch_events=2)


def exposures(*consents: dict[str, Any] | None) -> list[str]:
    """One exposure per item, a second apart in this order (None: default consent); their ids."""
    made = []
    for n, consent in enumerate(consents):
        fields = {} if consent is None else {"consent": consent}
        exposure = make_exposure(received_at=IN_WINDOW + timedelta(seconds=n), **fields)
        made.append(exposure.event_id)
    return made


def parts_of(batch: Batch) -> list[Batch]:
    return list(Batch.objects.filter(Q(pk=batch.pk) | Q(first_part=batch)).order_by("part"))


def event_ids(batch: Batch) -> list[str]:
    return [json.loads(line)["event_id"] for line in batch_body(batch).splitlines()]


def test_a_claim_over_the_limit_is_delivered_in_parts_holding_each_event_once(
    capped_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    ids = exposures(None, DROPPED, None, None, DROPPED, None, None)
    eligible = [ids[n] for n in (0, 2, 3, 5, 6)]
    batch = make_batch(feed=capped_feed, sequence=5)
    make_batch(feed=capped_feed, sequence=6, window_start=WINDOW_START + timedelta(minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        built = batch_build(batch_id=batch.pk)

    assert built is not None and built.part_count == 3
    parts = parts_of(batch)
    assert [part.part for part in parts] == [1, 2, 3]
    assert [part.part_count for part in parts] == [3, 3, 3]
    assert [part.first_part_id for part in parts] == [None, batch.pk, batch.pk]
    assert [part.claim_first_part_id for part in parts] == [batch.pk] * 3
    # The first part keeps the claim's number; the others take the next free ones.
    assert [part.sequence for part in parts] == [5, 7, 8]
    assert [event_ids(part) for part in parts] == [eligible[0:2], eligible[2:4], eligible[4:]]
    assert [part.delivered_count for part in parts] == [2, 2, 1]
    # A candidate is counted in the part being filled when it was read: a part
    # ends just before the event that would overfill it.
    assert [part.candidate_count for part in parts] == [3, 3, 1]
    assert [part.dropped_by_reason for part in parts] == [
        {Reason.TCF_CONSENT_MISSING: 1},
        {Reason.TCF_CONSENT_MISSING: 1},
        {},
    ]
    delivered: Counter[str] = Counter()
    for part in parts:
        delivered.update(part.delivered_by_campaign_day_event)
    assert sum(delivered.values()) == 5
    for part in parts:
        assert part.status == Batch.Status.READY
        assert (part.kind, part.window_start, part.window_end) == (
            batch.kind,
            batch.window_start,
            batch.window_end,
        )
        assert (part.claim_from, part.claim_to) == (batch.claim_from, batch.claim_to)
        assert part.first_signature is not None  # each signed for its own first attempt
    assert queued.ids("delivery.send_batch") == [str(part.pk) for part in parts]


def test_each_part_is_signed_for_its_first_attempt_as_it_is_written(
    capped_feed: Feed, partner: Partner, queued: QueuedTasks
):
    exposures(None, None, None, None, None)
    batch = make_batch(feed=capped_feed)

    batch_build(batch_id=batch.pk)

    secret = signing_secret_current(partner_id=partner.pk)
    for part in parts_of(batch):
        first_signature_verified(part, secret=secret)


@pytest.mark.parametrize("lines_per_call", ["about a chunk", "one"])
def test_a_feed_capped_in_bytes_gets_parts_of_at_most_that_much_ndjson(
    partner: Partner, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch, lines_per_call: str
):
    if lines_per_call == "one":
        # Every line over the row filter's budget per call: the part still decides.
        monkeypatch.setattr(build, "CHUNK_BYTES", 1)
    feed = make_feed(partner=partner, name="bytes", max_batch_bytes=1024)
    ids = [
        make_exposure(
            received_at=IN_WINDOW + timedelta(seconds=n), event_id=f"evt-{n:03d}-" + "x" * 90
        ).event_id
        for n in range(12)
    ]
    batch = make_batch(feed=feed)

    batch_build(batch_id=batch.pk)

    parts = parts_of(batch)
    assert len(parts) > 1
    for part in parts:
        assert part.body_bytes == len(batch_body(part)) <= 1024
    # Each full part holds as many records as fit: the next would not have.
    line = len(batch_body(parts[0]).splitlines()[0]) + 1
    assert parts[0].body_bytes + line > 1024
    assert [event for part in parts for event in event_ids(part)] == ids


def test_a_record_larger_than_the_byte_cap_goes_alone_in_its_part(
    partner: Partner, queued: QueuedTasks
):
    feed = make_feed(partner=partner, name="bytes", max_batch_bytes=1024)
    small = make_exposure(received_at=IN_WINDOW, event_id="evt-small")
    large = make_exposure(received_at=IN_WINDOW + timedelta(seconds=1), event_id="e" * 120)
    Feed.objects.filter(pk=feed.pk).update(max_batch_bytes=100)  # below the form's minimum
    batch = make_batch(feed=feed)

    batch_build(batch_id=batch.pk)

    parts = parts_of(batch)
    assert [event_ids(part) for part in parts] == [[small.event_id], [large.event_id]]
    assert parts[1].body_bytes > 100


def test_records_larger_than_the_byte_cap_each_make_a_part_from_the_first_on(
    partner: Partner, queued: QueuedTasks
):
    feed = make_feed(partner=partner, name="bytes", max_batch_bytes=1024)
    first = make_exposure(received_at=IN_WINDOW, event_id="a" * 120)
    dropped = make_exposure(received_at=IN_WINDOW + timedelta(seconds=1), consent=DROPPED)
    second = make_exposure(received_at=IN_WINDOW + timedelta(seconds=2), event_id="b" * 120)
    small = make_exposure(received_at=IN_WINDOW + timedelta(seconds=3), event_id="evt-small")
    Feed.objects.filter(pk=feed.pk).update(max_batch_bytes=100)
    batch = make_batch(feed=feed)

    batch_build(batch_id=batch.pk)

    parts = parts_of(batch)
    assert [event_ids(part) for part in parts] == [
        [first.event_id],
        [second.event_id],
        [small.event_id],
    ]
    # The dropped event was read while the first part was being filled.
    assert [part.candidate_count for part in parts] == [2, 1, 1]
    assert dropped.event_id not in event_ids(parts[0])


def test_a_parquet_file_drop_is_cut_into_parquet_files_of_at_most_the_cap(
    partner: Partner, queued: QueuedTasks
):
    feed = make_feed(
        partner=partner,
        name="files",
        mode=Feed.Mode.FILE,
        format=Feed.Format.PARQUET,
        max_batch_events=2,
    )
    ids = exposures(None, None, None)
    batch = make_batch(feed=feed)

    batch_build(batch_id=batch.pk)

    rows = [
        pq.read_table(io.BytesIO(body_read(part.body_path))).column("event_id").to_pylist()
        for part in parts_of(batch)
    ]
    assert rows == [ids[:2], ids[2:]]


def test_a_streaming_micro_batch_over_the_cap_goes_in_parts_too(
    partner: Partner, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    # A backlog (a worker was down) can make one flush larger than the partner takes.
    feed = make_feed(partner=partner, name="live", mode=Feed.Mode.STREAM, max_batch_events=2)
    ids = exposures(None, None, None, None, None)
    batch = make_batch(feed=feed, kind=Batch.Kind.STREAM)

    with django_capture_on_commit_callbacks(execute=True):
        batch_build(batch_id=batch.pk)

    parts = parts_of(batch)
    assert [event_ids(part) for part in parts] == [ids[0:2], ids[2:4], ids[4:]]
    assert {part.kind for part in parts} == {Batch.Kind.STREAM}
    assert queued.ids("delivery.send_batch") == [str(part.pk) for part in parts]


def test_a_claim_within_the_limit_is_one_part(capped_feed: Feed, queued: QueuedTasks):
    exposures(None, DROPPED, None)
    batch = make_batch(feed=capped_feed)

    batch_build(batch_id=batch.pk)

    assert parts_of(batch) == [batch]
    batch.refresh_from_db()
    assert (batch.part, batch.part_count, batch.delivered_count) == (1, 1, 2)
    assert batch.candidate_count == 3


def test_a_part_id_is_derived_from_the_claims_batch(capped_feed: Feed, queued: QueuedTasks):
    exposures(None, None, None)
    batch = make_batch(feed=capped_feed)

    batch_build(batch_id=batch.pk)

    later = Batch.objects.get(first_part=batch)
    assert later.pk == parts_module.part_id(first=batch.pk, part=2)
    assert parts_module.part_id(first=str(batch.pk), part=2) == later.pk
    assert parts_module.part_id(first=batch.pk, part=3) != later.pk


def test_a_build_that_fails_half_way_creates_no_part_and_the_next_build_creates_each_once(
    capped_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    ids = exposures(None, None, None, None, None)
    batch = make_batch(feed=capped_feed)
    real_store = parts_module._body_store
    stored: list[str] = []

    def store_then_fail(*, batch: Batch, body: Any) -> str:
        if stored:
            raise OSError("disk full")
        stored.append(real_store(batch=batch, body=body))
        return stored[-1]

    monkeypatch.setattr(parts_module, "_body_store", store_then_fail)
    with pytest.raises(OSError):
        batch_build(batch_id=batch.pk)

    batch.refresh_from_db()
    assert batch.status == Batch.Status.PENDING
    assert "disk full" in batch.last_error
    assert Batch.objects.filter(first_part=batch).count() == 0

    monkeypatch.setattr(parts_module, "_body_store", real_store)
    batch_build(batch_id=batch.pk)

    parts = parts_of(batch)
    assert [part.part for part in parts] == [1, 2, 3]
    assert sorted(event for part in parts for event in event_ids(part)) == sorted(ids)


def test_a_build_that_lost_its_claim_creates_no_part(
    capped_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
):
    exposures(None, None, None)
    batch = make_batch(feed=capped_feed)
    real_window_build = build._window_build

    def taken_over_meanwhile(*, batch: Batch) -> list[parts_module.BuiltPart]:
        parts = real_window_build(batch=batch)
        # The sweeper judged this worker dead and another build claimed the batch.
        Batch.objects.filter(pk=batch.pk).update(claimed_at=timezone.now() + timedelta(hours=1))
        return parts

    monkeypatch.setattr(build, "_window_build", taken_over_meanwhile)

    assert batch_build(batch_id=batch.pk) is None
    assert Batch.objects.count() == 1
    assert queued.ids("delivery.send_batch") == []


def test_superseding_one_part_builds_the_whole_claim_again(capped_feed: Feed, queued: QueuedTasks):
    ids = exposures(None, None, None)
    batch = make_batch(feed=capped_feed)
    batch_build(batch_id=batch.pk)
    old_parts = parts_of(batch)
    Batch.objects.filter(pk__in=[part.pk for part in old_parts]).update(
        status=Batch.Status.DELIVERED
    )
    Feed.objects.filter(pk=capped_feed.pk).update(max_batch_events=None)

    new = batch_supersede(batch_id=old_parts[1].pk)

    assert new is not None
    for part in old_parts:
        part.refresh_from_db()
        assert part.status == Batch.Status.SUPERSEDED
        assert part.superseded_by_id == new.pk
    batch_build(batch_id=new.pk)
    new.refresh_from_db()
    assert (new.part, new.part_count) == (1, 1)
    assert sorted(event_ids(new)) == sorted(ids)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_bulk_rebuild_of_several_parts_rebuilds_their_claim_once(
    capped_feed: Feed, queued: QueuedTasks, dry_run: bool
):
    exposures(None, None, None, None, None)
    batch = make_batch(feed=capped_feed)
    batch_build(batch_id=batch.pk)
    first, second, third = (part.pk for part in parts_of(batch))

    report = batches_rebuild(ids=[second, first, third], dry_run=dry_run)

    assert report.done == [second]
    assert report.skipped == {SkipReason.SAME_CLAIM: [first, third]}
    superseded = Batch.objects.filter(status=Batch.Status.SUPERSEDED).count()
    assert superseded == (0 if dry_run else 3)


def test_a_claim_with_a_part_in_flight_is_not_superseded(capped_feed: Feed, queued: QueuedTasks):
    exposures(None, None, None)
    batch = make_batch(feed=capped_feed)
    batch_build(batch_id=batch.pk)
    Batch.objects.filter(first_part=batch).update(status=Batch.Status.SENDING)

    assert batch_supersede(batch_id=batch.pk) is None
    assert Batch.objects.filter(status=Batch.Status.SUPERSEDED).count() == 0


@responses.activate
def test_a_part_says_which_part_of_which_claim_it_is(capped_feed: Feed, queued: QueuedTasks):
    responses.add(responses.POST, URL, status=200)
    exposures(None, None, None)
    batch = make_batch(feed=capped_feed)
    batch_build(batch_id=batch.pk)
    later = Batch.objects.get(first_part=batch)

    batch_send(batch_id=batch.pk)
    batch_send(batch_id=later.pk)

    first_headers, later_headers = (call.request.headers for call in responses.calls)
    assert first_headers["Gateway-Batch-Part"] == "1/2"
    # Every part names part 1, part 1 too: what a partner groups the parts by.
    assert first_headers["Gateway-Batch-First-Part"] == str(batch.pk)
    assert later_headers["webhook-id"] == str(later.pk)
    assert later_headers["Gateway-Batch-Part"] == "2/2"
    assert later_headers["Gateway-Batch-First-Part"] == str(batch.pk)


@responses.activate
def test_a_body_refused_as_too_large_fails_with_what_to_do(push_feed: Feed, queued: QueuedTasks):
    responses.add(responses.POST, URL, status=413)
    batch = make_batch(feed=push_feed, status=Batch.Status.READY, records=[{"event_id": "e"}])

    attempt = batch_send(batch_id=batch.pk)

    assert attempt is not None
    assert attempt.outcome == DeliveryAttempt.Outcome.PERMANENT_FAILURE
    batch.refresh_from_db()
    assert batch.status == Batch.Status.FAILED
    assert "HTTP 413" in batch.last_error
    assert "max batch events" in batch.last_error


def test_only_event_feeds_take_a_limit_and_it_is_at_least_one(partner: Partner):
    aggregate = Feed(
        partner=partner,
        name="cells",
        mode=Feed.Mode.PULL,
        shape=FeedShape.AGGREGATE,
        aggregate_dimensions=["campaign_id"],
        field_allowlist=["campaign_id"],
        deliver_from=WINDOW_START,
        max_batch_events=1000,
    )
    with pytest.raises(ValidationError) as refused:
        aggregate.full_clean()
    assert "max_batch_events" in refused.value.message_dict

    events = Feed(partner=partner, name="events", mode=Feed.Mode.PULL, deliver_from=WINDOW_START)
    events.max_batch_events = 0
    with pytest.raises(ValidationError) as refused:
        events.full_clean()
    assert "max_batch_events" in refused.value.message_dict


@pytest.mark.parametrize(
    "fields",
    [
        {"max_batch_bytes": 1023},
        {"max_batch_bytes": 1_000_000, "mode": Feed.Mode.FILE, "format": Feed.Format.PARQUET},
        {
            "max_batch_bytes": 1_000_000,
            "shape": FeedShape.AGGREGATE,
            "aggregate_dimensions": ["campaign_id"],
            "field_allowlist": ["campaign_id"],
        },
    ],
)
def test_a_byte_cap_is_for_ndjson_event_feeds_and_at_least_a_kilobyte(
    partner: Partner, fields: dict[str, Any]
):
    settings = {"mode": Feed.Mode.PULL, "deliver_from": WINDOW_START, **fields}
    feed = Feed(partner=partner, name="capped", **settings)
    with pytest.raises(ValidationError) as refused:
        feed.full_clean()
    assert "max_batch_bytes" in refused.value.message_dict
