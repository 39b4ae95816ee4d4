"""The batch store: safe file names, atomic files, counts in the partner's time zone."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.simulator.store import BatchStore, batch_id_valid, event_day
from tests.simulator.conftest import event, ndjson


@pytest.mark.parametrize("batch_id", ["0b6f3c7e-0d4a-4a4e-9d5e-1f1f1f1f1f1f", "b1", "a.b_c-d"])
def test_ids_of_letters_digits_dots_dashes_and_underscores_are_valid(batch_id: str) -> None:
    assert batch_id_valid(batch_id)


@pytest.mark.parametrize("batch_id", ["", ".", "..", "../x", "a/b", "a\\b", "-x", "x" * 129])
def test_ids_that_could_escape_or_hide_are_invalid(batch_id: str) -> None:
    assert not batch_id_valid(batch_id)


def test_add_refuses_an_unsafe_id_even_when_called_directly(tmp_path: Path) -> None:
    store = BatchStore(data_dir=tmp_path)

    with pytest.raises(ValueError):
        store.add(batch_id="../x", body=b"", records=[], source="test")


def test_add_writes_the_file_without_leaving_temporary_files(tmp_path: Path) -> None:
    store = BatchStore(data_dir=tmp_path)

    assert store.add(batch_id="b1", body=ndjson([event()]), records=[event()], source="test")

    assert [p.name for p in store.batch_dir.iterdir()] == ["b1.ndjson"]


def test_adding_a_known_id_again_returns_false_and_changes_nothing(tmp_path: Path) -> None:
    store = BatchStore(data_dir=tmp_path)
    store.add(batch_id="b1", body=b"first", records=[event()], source="test")

    assert not store.add(batch_id="b1", body=b"second", records=[event()], source="test")
    assert (store.batch_dir / "b1.ndjson").read_bytes() == b"first"
    assert store.event_total() == 1


def test_load_ignores_leftover_temporary_and_damaged_files(tmp_path: Path) -> None:
    batch_dir = tmp_path / "batches"
    batch_dir.mkdir()
    (batch_dir / "good.ndjson").write_bytes(ndjson([event()]))
    (batch_dir / ".tmp-123.ndjson").write_bytes(ndjson([event()]))
    (batch_dir / "broken.ndjson").write_bytes(b"{not json\n")

    store = BatchStore(data_dir=tmp_path)

    assert store.load() == 1
    assert store.batch_ids() == ["good"]


def test_event_day_uses_the_partner_time_zone_across_a_dst_change() -> None:
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    # 23:30 UTC on 30 March 2026 is 00:30 BST on the 31st (summer time began on the 29th).
    assert event_day("2026-03-30T23:30:00Z", london) == date(2026, 3, 31)
    # In winter London is on UTC.
    assert event_day("2026-11-30T23:30:00Z", london) == date(2026, 11, 30)


def test_a_naive_time_is_read_as_utc() -> None:
    from zoneinfo import ZoneInfo

    assert event_day("2026-11-25T02:00:00", ZoneInfo("America/New_York")) == date(2026, 11, 24)


def test_counts_filtered_by_type_still_include_events_without_a_type(tmp_path: Path) -> None:
    store = BatchStore(data_dir=tmp_path)
    records = [event(event_id="1"), event(event_id="2", event_type="complete")]
    untyped = event(event_id="3")
    del untyped["event_type"]
    records.append(untyped)
    store.add(batch_id="b", body=b"", records=records, source="test")

    assert store.counts() == {("cmp-1", date(2026, 11, 24)): 3}
    assert store.counts(event_types={"impression"}) == {("cmp-1", date(2026, 11, 24)): 2}
