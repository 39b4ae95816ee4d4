"""What the bulk delivery commands share: arguments, a text progress bar, the summary.

The commands (``replay_batches``, ``rebuild_batches``, ``retry_dead_batches``)
only parse their arguments, pick the batch ids and call one bulk service of
``gateway.delivery.replay``; everything they print is formatted here.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from gateway.delivery.replay import (
    BulkReport,
    Progress,
    SelectBy,
    batch_ids,
    feed_batches,
    feed_by_path,
)
from partners.models import Feed

# Batch ids listed per skip reason in the summary; the rest are counted.
IDS_SHOWN = 10


def iso_datetime(value: str) -> datetime:
    """An ISO 8601 instant for argparse; without an offset it is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 date or time, e.g. 2026-11-24T09:00:00Z"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ProgressBar:
    """``label [#####.....] 12/40 (30%)`` on stderr: redrawn in place on a terminal.

    Elsewhere (logs, CI, tests) a carriage return would pile every frame onto
    one line, so a new line is written at each tenth of the way instead.
    """

    WIDTH = 30

    def __init__(self, stream: OutputWrapper, *, label: str) -> None:
        self._stream = stream
        self._label = label
        self._in_place = stream.isatty()
        self._last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if self._in_place:
            self._stream.write(f"\r{self._line(done, total, percent)}", ending="")
            if done >= total:
                self._stream.write("")
            self._stream.flush()
        elif percent // 10 > self._last_tenth:
            self._last_tenth = percent // 10
            self._stream.write(self._line(done, total, percent))

    def _line(self, done: int, total: int, percent: int) -> str:
        filled = self.WIDTH * percent // 100
        bar = "#" * filled + "." * (self.WIDTH - filled)
        return f"{self._label} [{bar}] {done}/{total} ({percent}%)"


def summary_lines(report: BulkReport, *, done_as: str) -> list[str]:
    """The plain-text summary of a bulk run: done, skipped by reason with ids, dry run note."""
    verb = f"would be {done_as}" if report.dry_run else done_as
    lines = [f"{len(report.done)} of {report.total} batches {verb}."]
    for old, new in list(report.replaced_by.items())[:IDS_SHOWN]:
        lines.append(f"  {old} -> new batch {new}")
    if report.skipped:
        lines.append(f"{report.skipped_count} skipped:")
    for reason, ids in sorted(report.skipped.items(), key=lambda item: -len(item[1])):
        lines.append(f"  {len(ids)} {reason}")
        lines.append(f"    {_ids_text(ids)}")
    if report.dry_run:
        lines.append("Dry run: nothing was changed.")
    return lines


def _ids_text(ids: Sequence[uuid.UUID]) -> str:
    shown = ", ".join(str(batch_id) for batch_id in ids[:IDS_SHOWN])
    more = len(ids) - IDS_SHOWN
    return f"{shown}, and {more} more" if more > 0 else shown


class BulkCommand(BaseCommand):
    """Base of the bulk batch commands: feed and time range arguments, progress, summary."""

    def add_feed_argument(self, parser: CommandParser, *, required: bool) -> None:
        parser.add_argument(
            "--feed",
            metavar="PARTNER/FEED",
            required=required,
            help="The feed, as partner slug and feed name, e.g. nielsen/exposures.",
        )

    def add_range_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=iso_datetime, metavar="ISO", help="Start (inclusive), UTC if no offset."
        )
        parser.add_argument(
            "--until", type=iso_datetime, metavar="ISO", help="End (exclusive), UTC if no offset."
        )
        parser.add_argument(
            "--by",
            choices=[choice.value for choice in SelectBy],
            default=SelectBy.WINDOW.value,
            help="window (default): window and stream batches by window start, late batches "
            "by creation; created: every batch by creation time.",
        )

    def add_dry_run_argument(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be done; change nothing."
        )

    def feed(self, path: str) -> Feed:
        feed = feed_by_path(path)
        if feed is None:
            raise CommandError(f"No feed {path!r}: give it as partner-slug/feed-name.")
        return feed

    def time_range(self, options: dict[str, Any]) -> tuple[datetime, datetime]:
        since, until = options["since"], options["until"]
        if since is None or until is None:
            raise CommandError("--feed needs --since and --until.")
        if since >= until:
            raise CommandError("--since must be before --until.")
        return since, until

    def feed_batch_ids(self, feed: Feed, options: dict[str, Any]) -> list[uuid.UUID]:
        """The ids of ``feed``'s batches in the time range the options give (--by)."""
        since, until = self.time_range(options)
        selected = feed_batches(feed=feed, since=since, until=until, by=SelectBy(options["by"]))
        return batch_ids(selected)

    def progress(self, label: str) -> Progress:
        return ProgressBar(self.stderr, label=label)

    def write_summary(self, report: BulkReport, *, done_as: str) -> None:
        for line in summary_lines(report, done_as=done_as):
            self.stdout.write(line)
