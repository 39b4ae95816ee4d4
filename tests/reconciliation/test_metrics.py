"""Which event type each reported metric is compared with."""

from __future__ import annotations

import pytest

from gateway.ingest.validation import EVENT_TYPES
from gateway.reconciliation.metrics import EVENT_TYPE_BY_METRIC, metric_event_type
from gateway.reconciliation.models import Metric


def test_every_metric_has_exactly_one_event_type() -> None:
    assert set(EVENT_TYPE_BY_METRIC) == set(Metric.values)


def test_every_event_type_is_one_that_ingest_accepts() -> None:
    assert set(EVENT_TYPE_BY_METRIC.values()) <= EVENT_TYPES


def test_impressions_count_impression_events_only() -> None:
    assert metric_event_type(Metric.IMPRESSIONS) == "impression"


def test_an_unknown_metric_is_an_error_not_every_event() -> None:
    with pytest.raises(KeyError):
        metric_event_type("clicks")
