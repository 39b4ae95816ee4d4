"""``GET /metrics``: Prometheus metrics per feed, read from the database at scrape time.

A custom collector queries the database on every scrape instead of counting
in process memory: web and worker processes come and go in any number, and
the database already holds every batch and attempt, so any one process gives
the whole picture and no multiprocess directory is needed. The queries are
the grouped ones of ``gateway.delivery.health_selectors`` (a fixed number per
scrape, whatever the number of feeds).

Every series has the labels ``partner`` (slug), ``feed`` (name) and ``mode``.

Access: with ``METRICS_TOKEN`` set, scrapers send ``Authorization: Bearer
<token>`` (401 problem+json otherwise). Without it, only requests made
directly from this host are served: a loopback address *and* no proxy
headers, since behind a reverse proxy on the same host every request comes
from loopback (403 problem+json otherwise).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from gateway.api.bearer import bearer_token
from gateway.delivery.health_selectors import (
    FINISHED_OUTCOMES,
    FeedHealth,
    attempt_outcome_counts,
    batch_status_counts,
    events_delivered,
    feeds_health,
)
from gateway.delivery.horizon_watch import horizon_lag_seconds
from gateway.delivery.models import Batch
from gateway.errors import NotAuthenticated, PermissionDenied
from partners.models import Feed

LABELS = ("partner", "feed", "mode")
CIRCUIT_STATES = ("closed", "open", "half_open")
# Headers a reverse proxy adds: a request carrying one did not start on this host.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _labels(feed: Feed) -> list[str]:
    return [feed.partner.slug, feed.name, feed.mode]


class FeedMetricsCollector(Collector):
    """Reads every feed's numbers from the database when the registry is collected."""

    def __init__(self, *, now: datetime | None = None) -> None:
        self._now = now

    def describe(self) -> Iterable[Metric]:
        # Registering must not query the database; collect() describes itself.
        return []

    def collect(self) -> Iterator[Metric]:
        feeds = list(Feed.objects.select_related("partner").order_by("partner__slug", "name"))
        health = feeds_health(feeds=feeds, at=self._now or timezone.now())
        yield _enabled(feeds)
        yield _batches(feeds, batch_status_counts())
        yield _events_delivered(feeds, events_delivered())
        yield _attempts(feeds, attempt_outcome_counts())
        yield from _health_metrics(feeds, health)


def _enabled(feeds: list[Feed]) -> Metric:
    metric = GaugeMetricFamily(
        "gateway_feed_enabled", "1 when the feed is enabled, else 0.", labels=LABELS
    )
    for feed in feeds:
        metric.add_metric(_labels(feed), 1 if feed.enabled else 0)
    return metric


def _batches(feeds: list[Feed], counts: dict[int, dict[str, int]]) -> Metric:
    metric = GaugeMetricFamily(
        "gateway_feed_batches", "Batches of the feed by status.", labels=[*LABELS, "status"]
    )
    for feed in feeds:
        by_status = counts.get(feed.pk, {})
        # Every status, zeros included, so a series never vanishes when it empties.
        for status in Batch.Status.values:
            metric.add_metric([*_labels(feed), status], by_status.get(status, 0))
    return metric


def _events_delivered(feeds: list[Feed], events: dict[int, int]) -> Metric:
    metric = CounterMetricFamily(
        "gateway_feed_events_delivered",
        "Rows of batches that reached the partner (pushed successfully or downloaded).",
        labels=LABELS,
    )
    for feed in feeds:
        metric.add_metric(_labels(feed), events.get(feed.pk, 0))
    return metric


def _attempts(feeds: list[Feed], counts: dict[int, dict[str, int]]) -> Metric:
    metric = CounterMetricFamily(
        "gateway_feed_attempts",
        "Finished delivery attempts by outcome.",
        labels=[*LABELS, "outcome"],
    )
    for feed in feeds:
        by_outcome = counts.get(feed.pk, {})
        for outcome in FINISHED_OUTCOMES:
            metric.add_metric([*_labels(feed), outcome], by_outcome.get(outcome, 0))
    return metric


def _health_metrics(feeds: list[Feed], health: dict[int, FeedHealth]) -> Iterator[Metric]:
    latency = GaugeMetricFamily(
        "gateway_feed_delivery_latency_seconds",
        "Delivery latency quantiles over batches delivered in the last "
        "METRICS_LATENCY_WINDOW_HOURS (window end or creation to first success).",
        labels=[*LABELS, "quantile"],
    )
    samples = GaugeMetricFamily(
        "gateway_feed_delivery_latency_batches",
        "Batches the latency quantiles are computed over.",
        labels=LABELS,
    )
    backlog_batches = GaugeMetricFamily(
        "gateway_feed_backlog_batches",
        "Batches waiting: pending, ready or retry scheduled (pull: ready, not downloaded).",
        labels=LABELS,
    )
    backlog_events = GaugeMetricFamily(
        "gateway_feed_backlog_events", "Rows of the built batches waiting.", labels=LABELS
    )
    circuit = GaugeMetricFamily(
        "gateway_feed_circuit_state",
        "1 for the current state of the endpoint's circuit breaker, 0 for the others.",
        labels=[*LABELS, "state"],
    )
    last_success = GaugeMetricFamily(
        "gateway_feed_last_success_timestamp_seconds",
        "Unix time of the last successful attempt (pull: first download).",
        labels=LABELS,
    )
    streak = GaugeMetricFamily(
        "gateway_feed_failed_attempts_since_success",
        "Failed attempts since the last success.",
        labels=LABELS,
    )
    notices = GaugeMetricFamily(
        "gateway_feed_open_notices", "Notices not acknowledged yet.", labels=LABELS
    )
    for feed in feeds:
        labels, state = _labels(feed), health[feed.pk]
        for quantile, value in (("0.5", state.latency.p50), ("0.95", state.latency.p95)):
            if value is not None:
                latency.add_metric([*labels, quantile], value.total_seconds())
        samples.add_metric(labels, state.latency.samples)
        backlog_batches.add_metric(labels, state.backlog_batches)
        backlog_events.add_metric(labels, state.backlog_events)
        if state.circuit is not None:
            for name in CIRCUIT_STATES:
                circuit.add_metric([*labels, name], 1 if state.circuit.state == name else 0)
        if state.last_success_at is not None:
            last_success.add_metric(labels, state.last_success_at.timestamp())
        streak.add_metric(labels, state.failed_attempts)
        notices.add_metric(labels, state.open_notices)
    yield from (
        latency,
        samples,
        backlog_batches,
        backlog_events,
        circuit,
        last_success,
        streak,
        notices,
    )


class HorizonCollector(Collector):
    """How long committed exposures have waited on the commit horizon (all feeds alike)."""

    def __init__(self, *, now: datetime | None = None) -> None:
        self._now = now

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        lag = horizon_lag_seconds(now=self._now or timezone.now())
        yield GaugeMetricFamily(
            "gateway_commit_horizon_lag_seconds",
            "How long the oldest exposure committed above the commit horizon has waited: "
            "an open write transaction on the database server holds every feed's claims back.",
            value=lag,
        )


def metrics_exposition(*, accept: str, now: datetime | None = None) -> tuple[bytes, str]:
    """The scrape body and its content type (OpenMetrics when the scraper asks for it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FeedMetricsCollector(now=now))
    registry.register(HorizonCollector(now=now))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


# --- The view -----------------------------------------------------------------------


def metrics_authorize(request: Request) -> None:
    """Raise NotAuthenticated (401) or PermissionDenied (403) unless the scraper may read."""
    expected = settings.METRICS_TOKEN
    if expected:
        given = bearer_token(request)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise NotAuthenticated("The metrics token is not valid.", code="invalid_credentials")
        return
    if not _direct_from_loopback(request):
        raise PermissionDenied(
            "Without METRICS_TOKEN, metrics are served only to requests made on this host.",
            code="metrics_token_not_configured",
        )


def _direct_from_loopback(request: Request) -> bool:
    try:
        loopback = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False
    return loopback and not any(request.META.get(header) for header in PROXY_HEADERS)


class _ProblemsOnly(BaseContentNegotiation):
    """The scrape format comes from ``choose_encoder``; DRF renders only problem+json errors.

    Without this, a scraper accepting only ``text/plain`` would get 406.
    """

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> None:
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, first.media_type


class MetricsView(APIView):
    """Prometheus scrape endpoint; authorisation as described in the module docstring."""

    authentication_classes = []
    permission_classes = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _ProblemsOnly
    http_method_names = ["get", "head"]

    def get(self, request: Request) -> HttpResponse:
        metrics_authorize(request)
        body, content_type = metrics_exposition(accept=request.META.get("HTTP_ACCEPT", ""))
        response = HttpResponse(body, content_type=content_type)
        response["Cache-Control"] = "no-store"
        return response
