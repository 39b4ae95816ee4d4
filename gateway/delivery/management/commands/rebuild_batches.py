"""``manage.py rebuild_batches``: build a feed's batches again as new ones, the old superseded."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.delivery.management.cli import BulkCommand
from gateway.delivery.replay import batches_rebuild


class Command(BulkCommand):
    """Re-build every batch of a feed in a time range under the current configuration."""

    help = (
        "Build a feed's batches in a time range again under today's configuration, as NEW "
        "batches (new ids and sequence numbers: partners receive them as new deliveries); "
        "the old ones are marked superseded. Needs --yes, or --dry-run to look first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_feed_argument(parser, required=True)
        self.add_range_arguments(parser)
        self.add_dry_run_argument(parser)
        parser.add_argument(
            "--yes", action="store_true", help="Confirm: partners will receive new batches."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not (options["yes"] or options["dry_run"]):
            raise CommandError(
                "Re-building sends partners new batches for data they may already have. "
                "Pass --yes to confirm, or --dry-run to see what would be re-built."
            )
        feed = self.feed(options["feed"])
        ids = self.feed_batch_ids(feed, options)
        if not ids:
            self.stdout.write("No batches selected.")
            return
        report = batches_rebuild(
            ids=ids, dry_run=options["dry_run"], progress=self.progress("Re-building")
        )
        self.write_summary(report, done_as="superseded by new batches (queued for building)")
