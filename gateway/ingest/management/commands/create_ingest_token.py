"""``manage.py create_ingest_token --name NAME``: issue a token for one of our ad servers."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.ingest.services import ingest_token_create


class Command(BaseCommand):
    """Issue an ingest token and print its plaintext, the only time it can be seen."""

    help = "Issue an ingest token for an ad server and print it (shown once, stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="Which ad server uses the token.")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        try:
            token, plaintext = ingest_token_create(name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        # The plaintext alone on stdout so scripts can capture it; the notice goes to stderr.
        self.stderr.write(f"Issued ingest token {token} - store it now, it is not shown again.")
        self.stdout.write(plaintext)
