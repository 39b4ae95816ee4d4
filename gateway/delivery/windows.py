"""Delivery windows: which closed time ranges of a feed are due, without Django.

Windows are aligned to multiples of the window length since the Unix epoch, so
every gateway process computes the same boundaries whatever its start time,
and a window is only cut once it ended ``grace`` seconds ago, so exposures
reported a little after they occurred still make their window's batch
(later ones go to a late batch: ``gateway.delivery.claims``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

# At most this many windows per feed per dispatch call, so a feed that starts
# far in the past catches up over a few beats instead of one giant transaction.
DEFAULT_MAX_WINDOWS = 100


class Window(NamedTuple):
    """A half-open range [start, end) of occurrence times."""

    start: datetime
    end: datetime


def _epoch_seconds(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise ValueError("window maths needs timezone-aware datetimes")
    # Whole seconds, rounding down: boundaries are whole multiples of the length.
    return int(instant.timestamp() // 1)


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def window_floor(instant: datetime, *, length_seconds: int) -> datetime:
    """The start of the aligned window of ``length_seconds`` that contains ``instant``."""
    if length_seconds <= 0:
        raise ValueError("window length must be positive")
    seconds = _epoch_seconds(instant)
    return _from_epoch(seconds - seconds % length_seconds)


def closed_windows(
    *,
    start: datetime,
    length_seconds: int,
    grace_seconds: int,
    now: datetime,
    limit: int = DEFAULT_MAX_WINDOWS,
) -> list[Window]:
    """The consecutive windows from ``start`` that ended at least ``grace_seconds`` before now.

    Each window ends on the next aligned boundary after its start. ``start`` is
    normally aligned already; when it is not (the window length of the feed
    changed), the first window is a short one up to the next boundary, so
    windows never overlap and never leave a gap.
    """
    if length_seconds <= 0:
        raise ValueError("window length must be positive")
    horizon = now - timedelta(seconds=grace_seconds)
    windows: list[Window] = []
    end = window_floor(start, length_seconds=length_seconds) + timedelta(seconds=length_seconds)
    while len(windows) < limit and end <= horizon:
        windows.append(Window(start=start, end=end))
        start, end = end, end + timedelta(seconds=length_seconds)
    return windows
