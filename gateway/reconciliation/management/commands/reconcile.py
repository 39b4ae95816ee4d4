"""``manage.py reconcile``: recompute discrepancies now and print them as a table."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from gateway.reconciliation.models import Discrepancy
from gateway.reconciliation.selectors import partners_to_reconcile
from gateway.reconciliation.services import ReconciliationFailed, reconcile_partners

COLUMNS = (
    ("Partner", "partner"),
    ("Campaign", "campaign_id"),
    ("Date", "date"),
    ("Partner value", "partner_value"),
    ("Total", "internal_total"),
    ("Eligible", "internal_eligible"),
    ("Delivered", "internal_delivered"),
    ("Difference", "difference"),
    ("Diff %", "difference_pct"),
    ("Status", "status"),
)
NUMERIC = {
    "partner_value",
    "internal_total",
    "internal_eligible",
    "internal_delivered",
    "difference",
    "difference_pct",
}


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return int(value)


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date as YYYY-MM-DD") from exc


def format_table(rows: Sequence[Discrepancy]) -> str:
    """``rows`` as a plain-text table, numbers right-aligned, empty values as "-"."""
    cells = [[_cell(row, attribute) for _title, attribute in COLUMNS] for row in rows]
    widths = [
        max([len(title), *(len(line[i]) for line in cells)])
        for i, (title, _a) in enumerate(COLUMNS)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if attribute in NUMERIC else value.ljust(width)
            for value, width, (_t, attribute) in zip(values, widths, COLUMNS, strict=True)
        ]
        return "  ".join(parts).rstrip()

    header = line([title for title, _a in COLUMNS])
    rule = "  ".join("-" * width for width in widths)
    return "\n".join([header, rule, *(line(values) for values in cells)])


def _cell(row: Discrepancy, attribute: str) -> str:
    if attribute == "partner":
        return row.partner.slug
    value = getattr(row, attribute)
    return "-" if value is None else str(value)


class Command(BaseCommand):
    """Reconcile now, for one partner or all active ones, and show the result."""

    help = (
        "Recompute partner discrepancies and print them. Days are in each partner's "
        "reporting time zone; without --date the last day is today."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--partner", metavar="SLUG", help="Only this partner (any status).")
        parser.add_argument(
            "--days",
            type=_positive_int,
            metavar="N",
            help="How many days, ending with --date. Default: RECONCILIATION_LOOKBACK_DAYS, "
            "or 1 when --date is given.",
        )
        parser.add_argument(
            "--date", type=_iso_date, metavar="YYYY-MM-DD", help="Last day to reconcile."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        partners = partners_to_reconcile(slug=options["partner"])
        if options["partner"] and not partners:
            raise CommandError(f"No partner with slug {options['partner']!r}.")
        day_count = options["days"] or (
            1 if options["date"] else settings.RECONCILIATION_LOOKBACK_DAYS
        )
        try:
            rows = reconcile_partners(
                partners=partners, now=timezone.now(), day_count=day_count, last_day=options["date"]
            )
        except ReconciliationFailed as exc:
            raise CommandError(str(exc)) from exc
        if not rows:
            self.stdout.write(
                "Nothing to reconcile: no exposures or partner reports on those days."
            )
            return
        self.stdout.write(format_table(rows))
        flagged = sum(1 for row in rows if row.status != Discrepancy.Status.WITHIN_TOLERANCE)
        self.stdout.write(f"\n{len(rows)} rows, {flagged} not within tolerance.")
