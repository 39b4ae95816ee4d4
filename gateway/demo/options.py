"""Command-line options shared by ``seed_demo`` and ``run_demo``."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from gateway.demo.catalog import DEMO_PARTNERS
from gateway.demo.seed import DEFAULT_WEB_PORT


def add_port_arguments(parser: ArgumentParser) -> None:
    """``--web-port`` and one ``--<slug>-port`` per demo partner simulator."""
    parser.add_argument("--web-port", type=int, default=DEFAULT_WEB_PORT)
    for partner in DEMO_PARTNERS:
        parser.add_argument(
            f"--{partner.slug}-port",
            type=int,
            default=partner.simulator_port,
            dest=_dest(partner.slug),
            help=f"port of the {partner.slug} simulator (default {partner.simulator_port})",
        )


def simulator_ports(options: dict[str, Any]) -> dict[str, int]:
    return {partner.slug: options[_dest(partner.slug)] for partner in DEMO_PARTNERS}


def _dest(slug: str) -> str:
    return slug.replace("-", "_") + "_port"


def seed_failure(exc: ValidationError) -> CommandError:
    """A CommandError for a failed seed, with the usual cause spelled out."""
    message = "; ".join(exc.messages)
    if not settings.ALLOW_PRIVATE_ENDPOINTS:
        message += (
            " (the demo pushes to a simulator on http://127.0.0.1: "
            "set ALLOW_PRIVATE_ENDPOINTS=true, as `make run` does)"
        )
    return CommandError(f"demo seed failed: {message}")
