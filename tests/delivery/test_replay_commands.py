"""The replay_batches, rebuild_batches and retry_dead_batches commands: progress and summary."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, OutputWrapper

from gateway.delivery.management.cli import ProgressBar
from gateway.delivery.models import Batch
from partners.models import Feed, Partner
from tests.delivery.builders import WINDOW_START, make_batch
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

RECORDS = [{"event_id": "evt-1"}]
Status = Batch.Status
SINCE = "2026-11-24T09:00:00Z"
UNTIL = "2026-11-24T10:00:00Z"


def run(*args: str) -> tuple[str, str]:
    """Run a command; returns (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fresh(batch: Batch) -> Batch:
    return Batch.objects.get(pk=batch.pk)


def batches(feed: Feed, statuses: list[Status]) -> list[Batch]:
    return [
        make_batch(
            feed=feed,
            sequence=n + 1,
            window_start=WINDOW_START + timedelta(minutes=n),
            status=status,
            records=RECORDS,
        )
        for n, status in enumerate(statuses)
    ]


# --- replay_batches -------------------------------------------------------------------


def test_replaying_batches_by_id_prints_progress_and_a_summary(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    delivered, sending = batches(push_feed, [Status.DELIVERED, Status.SENDING])

    with django_capture_on_commit_callbacks(execute=True):
        out, err = run("replay_batches", "--batch", str(delivered.pk), str(sending.pk))

    assert "Replaying [" in err
    assert err.rstrip().endswith("2/2 (100%)")
    assert "1 of 2 batches queued for sending again." in out
    assert "1 in flight (building or sending)" in out
    assert str(sending.pk) in out
    assert fresh(delivered).status == Status.READY
    assert queued.ids("delivery.send_batch") == [str(delivered.pk)]


def test_replaying_a_feed_window_takes_every_batch_in_it(push_feed: Feed, queued: QueuedTasks):
    inside = batches(push_feed, [Status.DELIVERED, Status.FAILED, Status.RETRY_SCHEDULED])
    outside = make_batch(
        feed=push_feed,
        sequence=9,
        window_start=WINDOW_START + timedelta(hours=2),
        status=Status.DELIVERED,
    )

    out, _err = run(
        "replay_batches", "--feed", "nielsen/exposures", "--since", SINCE, "--until", UNTIL
    )

    assert "3 of 3 batches queued for sending again." in out
    assert {fresh(batch).status for batch in inside} == {Status.READY}
    assert fresh(outside).status == Status.DELIVERED


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(push_feed: Feed, queued: QueuedTasks):
    (failed,) = batches(push_feed, [Status.FAILED])

    out, _err = run(
        "replay_batches",
        "--feed",
        "nielsen/exposures",
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--dry-run",
    )

    assert "1 of 1 batches would be queued for sending again." in out
    assert "Dry run: nothing was changed." in out
    assert fresh(failed).status == Status.FAILED


def test_a_pull_feed_is_refused_with_a_reason(partner: Partner):
    make_feed(partner=partner, name="downloads", mode=Feed.Mode.PULL)

    with pytest.raises(CommandError, match="pull feed"):
        run("replay_batches", "--feed", "nielsen/downloads", "--since", SINCE, "--until", UNTIL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--feed", "nielsen/exposures"], "needs --since and --until"),
        (["--feed", "nielsen/exposures", "--since", UNTIL, "--until", SINCE], "before"),
        (["--feed", "nielsen/nope", "--since", SINCE, "--until", UNTIL], "No feed"),
    ],
)
def test_a_bad_selection_is_an_error(push_feed: Feed, args: list[str], message: str):
    with pytest.raises(CommandError, match=message):
        run("replay_batches", *args)


def test_an_empty_selection_says_so(push_feed: Feed):
    out, err = run(
        "replay_batches", "--feed", "nielsen/exposures", "--since", SINCE, "--until", UNTIL
    )

    assert out.strip() == "No batches selected."
    assert err == ""


# --- rebuild_batches ------------------------------------------------------------------


def test_a_rebuild_needs_an_explicit_yes(push_feed: Feed):
    (delivered,) = batches(push_feed, [Status.DELIVERED])

    with pytest.raises(CommandError, match="--yes"):
        run("rebuild_batches", "--feed", "nielsen/exposures", "--since", SINCE, "--until", UNTIL)
    assert fresh(delivered).status == Status.DELIVERED


def test_a_rebuild_supersedes_the_windows_batches_by_new_ones(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    delivered, pending = batches(push_feed, [Status.DELIVERED, Status.PENDING])

    with django_capture_on_commit_callbacks(execute=True):
        out, err = run(
            "rebuild_batches",
            "--feed",
            "nielsen/exposures",
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--yes",
        )

    delivered = fresh(delivered)
    assert delivered.status == Status.SUPERSEDED
    assert f"{delivered.pk} -> new batch {delivered.superseded_by_id}" in out
    assert "1 of 2 batches superseded by new batches" in out
    assert "1 not built yet (pending)" in out
    assert "Re-building [" in err
    assert fresh(pending).status == Status.PENDING
    assert queued.ids("delivery.build_batch") == [str(delivered.superseded_by_id)]


def test_a_rebuild_dry_run_needs_no_yes_and_creates_nothing(push_feed: Feed):
    batches(push_feed, [Status.DELIVERED])

    out, _err = run(
        "rebuild_batches",
        "--feed",
        "nielsen/exposures",
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--dry-run",
    )

    assert "1 of 1 batches would be superseded" in out
    assert Batch.objects.count() == 1


# --- retry_dead_batches ---------------------------------------------------------------


def test_dead_batches_of_a_feed_are_retried(push_feed: Feed, partner: Partner, queued: QueuedTasks):
    dead, delivered = batches(push_feed, [Status.FAILED, Status.DELIVERED])
    elsewhere = make_batch(feed=make_feed(partner=partner), status=Status.FAILED)

    out, err = run("retry_dead_batches", "--feed", "nielsen/exposures")

    assert "1 of 1 batches queued for sending again." in out
    assert "Retrying [" in err
    assert fresh(dead).status == Status.READY
    assert fresh(delivered).status == Status.DELIVERED
    assert fresh(elsewhere).status == Status.FAILED


def test_without_dead_batches_there_is_nothing_to_do(push_feed: Feed):
    batches(push_feed, [Status.DELIVERED])

    out, _err = run("retry_dead_batches")

    assert out.strip() == "No dead batches."


# --- The progress bar -----------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_in_place_on_a_terminal():
    terminal = Terminal()
    bar = ProgressBar(OutputWrapper(terminal), label="Replaying")

    for done in range(1, 5):
        bar(done, 4)

    frames = terminal.getvalue().split("\r")[1:]
    assert len(frames) == 4
    assert frames[0] == "Replaying [#######.......................] 1/4 (25%)"
    assert frames[-1] == "Replaying [##############################] 4/4 (100%)\n"


def test_the_progress_bar_writes_a_line_per_tenth_elsewhere():
    log = io.StringIO()
    bar = ProgressBar(OutputWrapper(log), label="Replaying")

    for done in range(1, 101):
        bar(done, 100)

    lines = log.getvalue().splitlines()
    # The first batch (work has begun), then one line per tenth.
    assert len(lines) == 11
    assert lines[0].endswith("1/100 (1%)")
    assert lines[1].endswith("10/100 (10%)")
    assert lines[-1].endswith("100/100 (100%)")
