"""Checks of ``gateway.delivery.statements`` that hold on every database the gateway runs on.

``test_statements.py`` runs them on PostgreSQL; it also runs this module as a
child process on a fresh SQLite database (the demo's), where the statements
take their other path (no data-modifying WITH) and values travel as text:

    python -m tests.delivery.statements_checks <sqlite path>

Each check makes its own partner and feed, so they run in any order, in one database.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, models, transaction

WHEN = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)


def _setup() -> tuple[Any, Any]:
    from tests.factories import make_feed, make_partner

    partner = make_partner()
    feed = make_feed(
        partner=partner,
        retry_schedule=[1, 2, 3],
        field_allowlist=["event_id", "campaign_id"],
    )
    return partner, feed


def _batch(feed: Any, sequence: int, **fields: Any) -> Any:
    from gateway.delivery.models import Batch

    return Batch.objects.create(
        feed=feed,
        sequence=sequence,
        window_start=WHEN,
        window_end=WHEN + timedelta(minutes=1),
        claim_from=sequence,
        **fields,
    )


def _values(instance: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def check_batch_for_send_is_what_the_orm_loads() -> None:
    from gateway.delivery.models import Batch
    from gateway.delivery.statements import batch_for_send

    _, feed = _setup()
    first = _batch(feed, 1)
    batch = _batch(
        feed,
        2,
        status=Batch.Status.RETRY_SCHEDULED,
        next_attempt_at=WHEN,
        attempt_count=2,
        dropped_by_reason={"no_consent": 3},
        first_signature={"timestamp": 1, "signatures": ["v1,abc"]},
        first_part=first,
        part=2,
        part_count=2,
    )
    loaded = batch_for_send(str(batch.pk))
    assert loaded is not None
    expected = Batch.objects.select_related("feed__partner").get(pk=batch.pk)
    assert _values(loaded) == _values(expected)
    assert _values(loaded.feed) == _values(expected.feed)
    assert _values(loaded.feed.partner) == _values(expected.feed.partner)
    assert loaded.replaced_id is None  # type: ignore[attr-defined]
    # Loaded as the ORM loads: saved back unchanged, it reads the same.
    loaded.save()
    assert _values(Batch.objects.get(pk=batch.pk)) == _values(expected)


def check_batch_for_send_names_the_batch_a_rebuild_replaced() -> None:
    from gateway.delivery.models import Batch
    from gateway.delivery.statements import batch_for_send

    _, feed = _setup()
    new = _batch(feed, 3)
    old_first = _batch(feed, 1, status=Batch.Status.SUPERSEDED, superseded_by=new)
    _batch(feed, 2, status=Batch.Status.SUPERSEDED, superseded_by=new, first_part=old_first, part=2)
    loaded = batch_for_send(new.pk)
    assert loaded is not None
    assert loaded.replaced_id == old_first.pk  # type: ignore[attr-defined]


def check_batch_for_send_brings_the_partners_unrevoked_signing_keys() -> None:
    """Every unrevoked key, newest first, as the default signer would read them; no others."""
    from gateway.delivery.statements import batch_for_send
    from partners.models import SigningSecret
    from tests.factories import make_feed, make_partner

    partner, feed = _setup()
    for n, revoked_at in enumerate([None, WHEN, None]):
        SigningSecret.objects.create(
            partner=partner,
            key_id=f"{partner.slug}-extra-{n}",
            secret_encrypted=f"ciphertext-{n}",
            activates_at=WHEN if n == 2 else None,
            retires_at=WHEN + timedelta(days=1) if n == 0 else None,
            revoked_at=revoked_at,
        )
    make_partner()  # another partner's keys stay out
    loaded = batch_for_send(_batch(feed, 1).pk)
    assert loaded is not None
    expected = SigningSecret.objects.filter(partner=partner, revoked_at=None).order_by(
        "-created_at", "-pk"
    )
    fields = ("id", "key_id", "secret_encrypted", "activates_at", "retires_at", "revoked_at")
    keys = loaded.feed.partner.unrevoked_signing_keys
    assert keys is not None
    assert [[getattr(key, f) for f in fields] for key in keys] == [
        [getattr(key, f) for f in fields] for key in expected
    ]
    assert len(keys) == 3  # make_partner's own key and two of the three above

    keyless = make_partner()
    keyless.signing_secrets.all().delete()
    loaded = batch_for_send(_batch(make_feed(partner=keyless), 1).pk)
    assert loaded is not None
    assert loaded.feed.partner.unrevoked_signing_keys == []


def check_batch_for_send_of_no_batch_is_none() -> None:
    from gateway.delivery.statements import batch_for_send

    assert batch_for_send(uuid.uuid4()) is None


def check_row_update_only_when_as_expected() -> None:
    from gateway.delivery.models import Batch
    from gateway.delivery.statements import RowUpdate, row_update

    _, feed = _setup()
    batch = _batch(feed, 1, status=Batch.Status.READY)
    values = {"status": Batch.Status.SENDING, "claimed_at": WHEN, "attempt_count": 1}
    stale = RowUpdate(Batch, batch.pk, values=values, where={"next_attempt_at": WHEN})
    assert row_update(stale) == 0
    expected = {"status": Batch.Status.READY, "next_attempt_at": None, "attempt_count": 0}
    assert row_update(RowUpdate(Batch, batch.pk, values=values, where=expected)) == 1
    batch.refresh_from_db()
    assert (batch.status, batch.claimed_at, batch.attempt_count) == ("sending", WHEN, 1)
    assert row_update(RowUpdate(Batch, batch.pk, values=values, where=expected)) == 0


def check_rows_update_all_or_none() -> None:
    from gateway.delivery.models import Batch
    from gateway.delivery.statements import RowUpdate, rows_update

    _, feed = _setup()
    one, two = _batch(feed, 1), _batch(feed, 2)
    rows_update(
        RowUpdate(Batch, one.pk, values={"last_error": "first"}),
        RowUpdate(Batch, two.pk, values={"last_error": "second", "delivered_at": WHEN}),
    )
    assert Batch.objects.get(pk=one.pk).last_error == "first"
    assert Batch.objects.get(pk=two.pk).delivered_at == WHEN
    # The second breaks a constraint (one sequence number per feed): neither is written.
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_update(
            RowUpdate(Batch, one.pk, values={"last_error": "changed"}),
            RowUpdate(Batch, two.pk, values={"sequence": 1}),
        )
    assert Batch.objects.get(pk=one.pk).last_error == "first"


def check_row_insert_writes_every_field() -> None:
    from gateway.delivery.models import DeliveryAttempt
    from gateway.delivery.statements import row_insert

    _, feed = _setup()
    batch = _batch(feed, 1)
    attempt = row_insert(
        DeliveryAttempt(batch=batch, number=1, started_at=WHEN, webhook_timestamp=2**40)
    )
    assert attempt.pk is not None and not attempt._state.adding
    assert _values(DeliveryAttempt.objects.get(pk=attempt.pk)) == _values(attempt)


def check_row_insert_if_updated() -> None:
    from gateway.delivery.models import Batch, DeliveryAttempt
    from gateway.delivery.statements import RowUpdate, row_insert_if_updated

    _, feed = _setup()
    batch = _batch(feed, 1, status=Batch.Status.READY)
    claim = RowUpdate(
        Batch,
        batch.pk,
        values={"status": Batch.Status.SENDING, "claimed_at": WHEN},
        where={"status": Batch.Status.READY, "next_attempt_at": None},
    )

    def attempt() -> DeliveryAttempt:
        return DeliveryAttempt(
            batch=batch, number=1, started_at=WHEN, webhook_timestamp=1, task_id="t-1"
        )

    inserted = row_insert_if_updated(claim, attempt())
    assert inserted is not None
    assert _values(DeliveryAttempt.objects.get(batch=batch)) == _values(inserted)
    assert Batch.objects.get(pk=batch.pk).claimed_at == WHEN
    # The row is no longer as expected: nothing is inserted.
    assert row_insert_if_updated(claim, attempt()) is None
    assert DeliveryAttempt.objects.filter(batch=batch).count() == 1


def check_rows_read() -> None:
    from gateway.delivery.models import Batch
    from gateway.delivery.statements import rows_read

    _, feed = _setup()
    for sequence in (2, 1, 3):
        _batch(feed, sequence, built_at=WHEN if sequence != 3 else None)
    rows = rows_read(
        Batch,
        ["sequence", "built_at"],
        where={"feed_id": feed.pk, "body_expired_at": None},
        order_by=["-sequence"],
    )
    assert [(row.sequence, row.built_at) for row in rows] == [(3, None), (2, WHEN), (1, WHEN)]
    assert rows[0].get_deferred_fields() >= {"status", "feed_id"}
    assert rows_read(Batch, ["sequence"], where={"feed_id": feed.pk, "built_at": None}) == [
        Batch.objects.get(feed=feed, sequence=3)
    ]


CHECKS: list[Callable[[], None]] = [
    check_batch_for_send_is_what_the_orm_loads,
    check_batch_for_send_names_the_batch_a_rebuild_replaced,
    check_batch_for_send_brings_the_partners_unrevoked_signing_keys,
    check_batch_for_send_of_no_batch_is_none,
    check_row_update_only_when_as_expected,
    check_rows_update_all_or_none,
    check_row_insert_writes_every_field,
    check_row_insert_if_updated,
    check_rows_read,
]


def main(database_path: str) -> None:
    """Run every check on a new SQLite database at ``database_path``."""
    os.environ["DATABASE_URL"] = f"sqlite:///{database_path}"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    for check in CHECKS:
        check()
        print("passed", check.__name__, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
