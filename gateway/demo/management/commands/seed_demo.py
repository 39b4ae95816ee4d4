"""``manage.py seed_demo``: create or refresh the demo configuration (safe to run twice)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from gateway.demo.options import add_port_arguments, seed_failure, simulator_ports
from gateway.demo.seed import DemoSecrets, demo_file_path, demo_seed


class Command(BaseCommand):
    """Seeds the admin, the demo partners, their feeds, keys and an ingest token."""

    help = (
        "Create or refresh the demo partners, feeds, credentials and admin user; "
        "plaintext secrets go to var/demo.json (mode 0600)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_port_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            demo = demo_seed(
                var_dir=Path(settings.VAR_DIR),
                web_port=options["web_port"],
                simulator_ports=simulator_ports(options),
            )
        except ValidationError as exc:
            raise seed_failure(exc) from exc
        self.stdout.write(seed_summary(demo, path=demo_file_path(Path(settings.VAR_DIR))))


def seed_summary(demo: DemoSecrets, *, path: Path) -> str:
    partners = ", ".join(f"{slug} ({p.mode})" for slug, p in demo.partners.items())
    return (
        f"Demo seeded: admin user {demo.admin_username!r}, partners {partners}.\n"
        f"Credentials (admin password, signing secrets, API keys, ingest token): {path}"
    )
