"""GET /metrics: per-feed Prometheus metrics read from the database, and who may read them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from gateway.delivery import health_selectors
from gateway.delivery.circuit import CircuitSnapshot
from gateway.delivery.models import Batch, DeliveryAttempt, FeedNotice
from partners.models import Feed, Partner
from tests.delivery.builders import WINDOW_START, make_batch
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

Outcome = DeliveryAttempt.Outcome
Status = Batch.Status
TOKEN = "metrics-token-for-tests"
FEED = {"partner": "nielsen", "feed": "exposures", "mode": "push"}


@pytest.fixture(autouse=True)
def _metrics_token(settings, clean_shared_store: None):
    settings.METRICS_TOKEN = TOKEN


@pytest.fixture
def client() -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def samples(client: Client) -> dict[tuple[str, frozenset], float]:
    """The scrape as {(sample name, labels): value}."""
    response = client.get(reverse("metrics"))
    assert response.status_code == 200, response.content
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset]:
    return name, frozenset({**FEED, **labels}.items())


def attempt(batch: Batch, number: int, outcome: str, *, at=None) -> None:
    at = at or timezone.now()
    DeliveryAttempt.objects.create(
        batch=batch,
        number=number,
        started_at=at,
        finished_at=at,
        outcome=outcome,
        webhook_timestamp=1,
    )


def window(n: int) -> dict:
    return {"sequence": n + 1, "window_start": WINDOW_START + timedelta(minutes=n)}


# --- Values ---------------------------------------------------------------------------


def test_batches_events_and_attempts_are_counted_per_feed(
    client: Client, push_feed: Feed, partner: Partner
):
    delivered = make_batch(
        feed=push_feed,
        status=Status.DELIVERED,
        delivered_count=7,
        delivered_at=timezone.now(),
        **window(0),
    )
    attempt(delivered, 1, Outcome.TRANSIENT_FAILURE)
    attempt(delivered, 2, Outcome.SUCCEEDED)
    failed = make_batch(feed=push_feed, status=Status.FAILED, delivered_count=3, **window(1))
    attempt(failed, 1, Outcome.PERMANENT_FAILURE)
    attempt(failed, 2, Outcome.IN_PROGRESS)
    make_batch(feed=push_feed, status=Status.PENDING, **window(2))
    make_feed(partner=partner, name="quiet", enabled=False)

    scraped = samples(client)

    assert scraped[key("gateway_feed_batches", status="delivered")] == 1
    assert scraped[key("gateway_feed_batches", status="failed")] == 1
    assert scraped[key("gateway_feed_batches", status="pending")] == 1
    assert scraped[key("gateway_feed_batches", status="superseded")] == 0
    assert scraped[key("gateway_feed_events_delivered_total")] == 7
    assert scraped[key("gateway_feed_attempts_total", outcome="succeeded")] == 1
    assert scraped[key("gateway_feed_attempts_total", outcome="transient_failure")] == 1
    assert scraped[key("gateway_feed_attempts_total", outcome="permanent_failure")] == 1
    assert key("gateway_feed_attempts_total", outcome="in_progress") not in scraped
    assert scraped[key("gateway_feed_enabled")] == 1
    assert scraped[key("gateway_feed_enabled", feed="quiet")] == 0
    assert scraped[key("gateway_feed_failed_attempts_since_success")] == 1


def test_latency_backlog_and_notices_come_from_the_feed_health(client: Client, push_feed: Feed):
    hour_ago = timezone.now() - timedelta(hours=1)
    for n, seconds in enumerate((10, 20, 30)):
        end = hour_ago - timedelta(minutes=n)
        batch = make_batch(
            feed=push_feed,
            status=Status.DELIVERED,
            window_start=end - timedelta(minutes=1),
            window_end=end,
            sequence=n + 1,
            delivered_at=end + timedelta(seconds=seconds),
        )
        attempt(batch, 1, Outcome.SUCCEEDED, at=end + timedelta(seconds=seconds))
    make_batch(feed=push_feed, status=Status.READY, delivered_count=4, **window(10))
    FeedNotice.objects.create(feed=push_feed, code="circuit_open", message="503s")

    scraped = samples(client)

    assert scraped[key("gateway_feed_delivery_latency_seconds", quantile="0.5")] == 20
    assert scraped[key("gateway_feed_delivery_latency_seconds", quantile="0.95")] == 29
    assert scraped[key("gateway_feed_delivery_latency_batches")] == 3
    assert scraped[key("gateway_feed_backlog_batches")] == 1
    assert scraped[key("gateway_feed_backlog_events")] == 4
    assert scraped[key("gateway_feed_open_notices")] == 1
    assert scraped[key("gateway_feed_last_success_timestamp_seconds")] == pytest.approx(
        (hour_ago + timedelta(seconds=10)).timestamp()
    )


def test_the_circuit_state_is_one_hot(
    client: Client, push_feed: Feed, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(
        health_selectors,
        "circuit_snapshot",
        lambda *, endpoint_url: CircuitSnapshot(
            state="half_open", failures=5, requests=6, open_until=None
        ),
    )

    scraped = samples(client)

    assert scraped[key("gateway_feed_circuit_state", state="half_open")] == 1
    assert scraped[key("gateway_feed_circuit_state", state="open")] == 0
    assert scraped[key("gateway_feed_circuit_state", state="closed")] == 0


def test_a_pull_feed_has_no_circuit_and_no_latency_yet(client: Client, partner: Partner):
    make_feed(partner=partner, name="downloads", mode=Feed.Mode.PULL)
    pull = {"feed": "downloads", "mode": "pull"}

    scraped = samples(client)

    assert scraped[key("gateway_feed_enabled", **pull)] == 1
    assert not [name for name, labels in scraped if name == "gateway_feed_circuit_state"]
    assert key("gateway_feed_delivery_latency_seconds", quantile="0.5", **pull) not in scraped


def test_openmetrics_is_served_to_scrapers_that_ask_for_it(client: Client, push_feed: Feed):
    response = client.get(reverse("metrics"), HTTP_ACCEPT="application/openmetrics-text")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().endswith("# EOF\n")


def test_the_scrape_costs_the_same_queries_for_more_feeds(
    client: Client, partner: Partner, django_assert_max_num_queries
):
    for n in range(2):
        make_feed(partner=partner, name=f"feed-{n}")
    with django_assert_max_num_queries(20) as few:
        client.get(reverse("metrics"))
    for n in range(2, 6):
        make_feed(partner=partner, name=f"feed-{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("metrics"))


# --- Access ---------------------------------------------------------------------------


def test_without_a_token_the_answer_is_a_401_problem(db: None):
    response = Client().get(reverse("metrics"))

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "missing_credentials"


def test_a_wrong_token_is_a_401_problem(db: None):
    response = Client(HTTP_AUTHORIZATION="Bearer not-the-token").get(reverse("metrics"))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_errors_are_problems_even_for_plain_text_scrapers(db: None):
    response = Client().get(reverse("metrics"), HTTP_ACCEPT="text/plain")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_without_a_configured_token_loopback_may_scrape(settings, push_feed: Feed):
    settings.METRICS_TOKEN = ""

    response = Client().get(reverse("metrics"), REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "headers",
    [
        {"REMOTE_ADDR": "203.0.113.9"},
        # A reverse proxy on this host: the request itself came from elsewhere.
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},
    ],
)
def test_without_a_configured_token_other_clients_get_a_403_problem(settings, headers: dict):
    settings.METRICS_TOKEN = ""

    response = Client().get(reverse("metrics"), **headers)

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "metrics_token_not_configured"
