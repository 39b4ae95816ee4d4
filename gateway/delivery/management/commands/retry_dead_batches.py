"""``manage.py retry_dead_batches``: retry failed batches now, with a fresh retry budget."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.delivery.management.cli import BulkCommand
from gateway.delivery.replay import batch_ids, batches_retry_dead, dead_batches


class Command(BulkCommand):
    """Retry every dead (failed) batch, of one feed or of all."""

    help = (
        "Retry dead batches (failed: retries exhausted or a permanent error) now, under the "
        "same batch ids, each with a fresh retry budget."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_feed_argument(parser, required=False)
        self.add_dry_run_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        feed = self.feed(options["feed"]) if options["feed"] else None
        ids = batch_ids(dead_batches(feed=feed))
        if not ids:
            self.stdout.write("No dead batches.")
            return
        report = batches_retry_dead(
            ids=ids, dry_run=options["dry_run"], progress=self.progress("Retrying")
        )
        self.write_summary(report, done_as="queued for sending again")
