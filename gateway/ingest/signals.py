"""Signals ingest sends, so other apps react without ingest importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after the transaction that stored new exposures commits, with
# ``count`` = how many rows it stored. Streaming delivery listens.
exposures_committed = Signal()
