"""The send path's statements made once: what they read and write is what the ORM would."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import signals
from django.test.utils import CaptureQueriesContext

from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.statements import batch_for_send
from partners.models import Feed, SigningSecret
from partners.services import _signing_keys_in_use_q
from tests.delivery import statements_checks
from tests.delivery.builders import make_batch
from tests.factories import make_partner
from tests.sqlite_child import run_on_fresh_sqlite


@pytest.mark.django_db
@pytest.mark.parametrize("check", statements_checks.CHECKS, ids=lambda check: check.__name__)
def test_on_postgresql(check: Callable[[], None]) -> None:
    check()


def test_on_sqlite(tmp_path: Path) -> None:
    """The demo's database: no data-modifying WITH there, and values travel as text."""
    database = tmp_path / "db.sqlite3"
    child = run_on_fresh_sqlite(
        ["-m", "tests.delivery.statements_checks", str(database)], database=database
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.count("passed") == len(statements_checks.CHECKS)


@pytest.mark.parametrize("model", [Batch, DeliveryAttempt])
def test_written_models_have_no_save_signal_receivers(model: type) -> None:
    """The statements send no signals: a receiver added to these models would be skipped."""
    for signal in (signals.pre_save, signals.post_save):
        assert not signal.has_listeners(model), f"{model.__name__} has a {signal} receiver"


@pytest.mark.django_db
def test_a_send_load_is_one_prepared_statement(push_feed: Feed) -> None:
    """Planned once per connection; the feed and its partner come with the batch."""
    batch = make_batch(feed=push_feed, status=Batch.Status.READY)
    for _ in range(2):
        with CaptureQueriesContext(connection) as orm_queries:
            loaded = batch_for_send(batch.pk)
            assert loaded is not None
            assert loaded.feed.partner.slug == "nielsen"
            assert loaded.feed.endpoint_url == push_feed.endpoint_url
        assert len(orm_queries) == 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ['%FROM "delivery_batch" b JOIN%'],
        )
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db
def test_signs_at_is_the_query_rule() -> None:
    """``SigningSecret.signs_at`` and ``_signing_keys_in_use_q`` agree on every combination."""
    partner = make_partner()
    at = datetime(2026, 11, 24, 10, tzinfo=UTC)
    moments = [None, at - timedelta(seconds=1), at, at + timedelta(seconds=1)]
    for n, (activates, retires, revoked) in enumerate(
        itertools.product(moments, moments, [None, at])
    ):
        SigningSecret.objects.create(
            partner=partner,
            key_id=f"key-{n}",
            secret_encrypted="unused",
            activates_at=activates,
            retires_at=retires,
            revoked_at=revoked,
        )
    keys = SigningSecret.objects.filter(partner=partner, key_id__startswith="key-")
    in_use = set(keys.filter(_signing_keys_in_use_q(at)).values_list("key_id", flat=True))
    assert in_use  # the combinations include keys in use, and keys not
    assert {key.key_id for key in keys if key.signs_at(at)} == in_use
