"""``manage.py replay_batches``: send batches again as new attempts of the same batches."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.delivery.management.cli import BulkCommand
from gateway.delivery.replay import batches_replay


class Command(BulkCommand):
    """Replay given batches, or every batch of a feed in a time range."""

    help = (
        "Send delivered, failed or retry-scheduled batches again under the same batch id "
        "(same webhook-id, so partners can drop duplicates), with a fresh retry budget."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--batch", nargs="+", type=uuid.UUID, metavar="ID", help="Batch ids to replay."
        )
        which.add_argument(
            "--feed",
            metavar="PARTNER/FEED",
            help="Every batch of this feed (partner slug/feed name) in --since..--until.",
        )
        self.add_range_arguments(parser)
        self.add_dry_run_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"]:
            ids = options["batch"]
        else:
            feed = self.feed(options["feed"])
            if not feed.pushes:
                raise CommandError(
                    f"{feed} is a pull feed: the partner downloads its batches, "
                    "so there is nothing to send again."
                )
            ids = self.feed_batch_ids(feed, options)
        if not ids:
            self.stdout.write("No batches selected.")
            return
        report = batches_replay(
            ids=ids, dry_run=options["dry_run"], progress=self.progress("Replaying")
        )
        self.write_summary(report, done_as="queued for sending again")
