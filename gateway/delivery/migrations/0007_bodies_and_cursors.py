"""Existing data for claims: bodies move to storage, feeds that delivered get a cursor."""

import io

from django.db import migrations

def _commit_horizon(connection):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        else:
            cursor.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM ingest_exposure")
        return int(cursor.fetchone()[0])


def _bodies_to_storage(apps, schema_editor):
    """Move bodies kept in the database so far into the batch body storage."""
    from django.core.files import File
    from django.core.files.storage import storages

    storage = storages["batches"]
    Batch = apps.get_model("delivery", "Batch")
    for batch in Batch.objects.exclude(body_gzip=None).only("pk", "feed_id", "body_gzip"):
        name = f"feed-{batch.feed_id}/{batch.pk}.ndjson.gz"
        if storage.exists(name):
            storage.delete(name)
        stored = storage.save(name, File(io.BytesIO(bytes(batch.body_gzip))))
        Batch.objects.filter(pk=batch.pk).update(body_path=stored)


def _cursors_from_existing_batches(apps, schema_editor):
    """Feeds that delivered before claims existed continue after their last window.

    Their exposures so far are treated as claimed (the horizon is now), so
    nothing already delivered is sent again as "late".
    """
    from django.db.models import Max

    Batch = apps.get_model("delivery", "Batch")
    FeedCursor = apps.get_model("delivery", "FeedCursor")
    horizon = _commit_horizon(schema_editor.connection)
    Batch.objects.update(claim_to=horizon)
    ends = Batch.objects.values("feed_id").annotate(last_end=Max("window_end"))
    for row in ends:
        FeedCursor.objects.create(
            feed_id=row["feed_id"], horizon=horizon, frontier=row["last_end"]
        )


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0006_exactly_once_claims"),
        ("ingest", "0002_exposure_commit_seq"),
    ]

    operations = [
        migrations.RunPython(_bodies_to_storage, migrations.RunPython.noop),
        migrations.RunPython(_cursors_from_existing_batches, migrations.RunPython.noop),
    ]
