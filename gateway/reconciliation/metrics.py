"""Which of our event types each metric partners report counts, with no Django import.

Partners report a metric ("impressions"); our counts are of events, of which
an impression is one type among starts, quartiles, completes and clicks. This
is the one place that says which type a metric compares against. Keys equal
``Metric`` values (a test keeps them in step), so a metric added there without
an event type here fails that test instead of counting every event.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

EVENT_TYPE_BY_METRIC: Mapping[str, str] = MappingProxyType({"impressions": "impression"})


def metric_event_type(metric: str) -> str:
    """The event type our internal counts for ``metric`` are made of; KeyError if unknown."""
    return EVENT_TYPE_BY_METRIC[metric]
