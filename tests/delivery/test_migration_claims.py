"""Upgrading to claims: bodies kept in the database move to storage, delivering feeds get a cursor.

Runs the real migrations backwards and forwards on the test database, with
rows written through the historical models, as an upgrade of a live
installation would meet them.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from gateway.delivery.storage import body_read

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("delivery", "0005_batch_transformed_by_reason"),
    ("ingest", "0001_initial"),
    ("partners", "0003_privacy_settings_row"),
    ("filedrop", None),
]
WINDOW = datetime(2026, 11, 24, 9, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str | None]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    # A fresh loader: the historical models as the database now is.
    nodes = [target for target in targets if target[1] is not None]
    return MigrationExecutor(connection).loader.project_state(nodes).apps


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def test_bodies_move_to_storage_and_delivered_history_is_not_sent_again():
    old = _migrate(BEFORE)
    Partner = old.get_model("partners", "Partner")
    Feed = old.get_model("partners", "Feed")
    Batch = old.get_model("delivery", "Batch")
    partner = Partner.objects.create(slug="upgraded", name="Upgraded")
    feed = Feed.objects.create(
        partner=partner,
        name="push",
        mode="push",
        endpoint_url="https://p.example/in",
        deliver_from=WINDOW,
    )
    for n in range(2):
        Batch.objects.create(
            feed=feed,
            sequence=n + 1,
            window_start=WINDOW.replace(minute=n),
            window_end=WINDOW.replace(minute=n + 1),
            status="delivered",
            body_gzip=gzip.compress(b'{"n":%d}\n' % n),
        )

    new = _migrate(_latest())

    NewBatch = new.get_model("delivery", "Batch")
    FeedCursor = new.get_model("delivery", "FeedCursor")
    batches = list(NewBatch.objects.order_by("sequence"))
    assert [gzip.decompress(body_read(b.body_path)) for b in batches] == [
        b'{"n":0}\n',
        b'{"n":1}\n',
    ]
    cursor = FeedCursor.objects.get(feed_id=feed.pk)
    # The next round continues after the last window, and what was stored
    # before the upgrade counts as claimed: no late batch re-sends it.
    assert cursor.frontier == WINDOW.replace(minute=2)
    assert cursor.horizon > 0
    assert {b.claim_to for b in batches} == {cursor.horizon}
