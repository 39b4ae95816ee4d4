"""``GET /api/v1/explain``: staff sessions only, problem+json errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User

from tests.delivery.builders import make_exposure
from tests.factories import make_feed, make_partner

pytestmark = pytest.mark.django_db
URL = "/api/v1/explain"


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_user("eng", "eng@example.com", "pw", is_staff=True))
    return client


@pytest.fixture
def exposure():
    return make_exposure(
        received_at=datetime(2026, 11, 24, 9, tzinfo=UTC), consent={"us_privacy": "1YYN"}
    )


def test_staff_get_the_explanation_of_an_exposure_for_a_partner(staff_client, exposure) -> None:
    partner = make_partner(slug="nielsen")
    make_feed(partner=partner, name="events", field_allowlist=["event_id", "user_id"])

    response = staff_client.get(URL, {"event_id": exposure.event_id, "partner": "nielsen"})

    assert response.status_code == 200
    body = response.json()
    assert body["event_id"] == exposure.event_id
    assert body["partner"] == "nielsen"
    assert body["feed"] == "events"
    assert body["decision"] == {"eligible": True, "reason": None}
    assert body["output"] == {"event_id": exposure.event_id}
    removed = {row["path"]: row["why"] for row in body["fields"] if row["action"] == "removed"}
    assert removed["user_id"] == "transmit_user_ids denied: us_privacy_opt_out"


def test_a_named_feed_is_used(staff_client, exposure) -> None:
    partner = make_partner(slug="ias")
    make_feed(partner=partner, name="a", field_allowlist=["event_id"])
    make_feed(partner=partner, name="b", field_allowlist=["campaign_id"])

    response = staff_client.get(URL, {"event_id": exposure.event_id, "partner": "ias", "feed": "b"})

    assert response.json()["output"] == {"campaign_id": "cmp-1"}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"partner": "nielsen"}, 400, "missing_parameter"),
        ({"event_id": "evt-x", "partner": "nobody"}, 404, "partner_not_found"),
        ({"event_id": "evt-missing", "partner": "nielsen"}, 404, "exposure_not_found"),
        ({"event_id": "EVENT", "partner": "nielsen", "feed": "nope"}, 404, "feed_not_found"),
    ],
)
def test_errors_are_problem_json(staff_client, exposure, params, status, code) -> None:
    make_partner(slug="nielsen")
    params = {k: exposure.event_id if v == "EVENT" else v for k, v in params.items()}

    response = staff_client.get(URL, params)

    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_anonymous_and_non_staff_users_are_refused(client, exposure) -> None:
    make_partner(slug="nielsen")
    params = {"event_id": exposure.event_id, "partner": "nielsen"}

    anonymous = client.get(URL, params)
    client.force_login(User.objects.create_user("viewer", "v@example.com", "pw"))
    not_staff = client.get(URL, params)

    for response in (anonymous, not_staff):
        assert response.status_code in (401, 403)
        assert response["Content-Type"] == "application/problem+json"
        assert "payload" not in response.content.decode()
