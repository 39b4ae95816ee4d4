"""Exposure payloads as PostgreSQL json (the text as written) instead of jsonb.

PostgreSQL converts the column with its jsonb-to-json cast (a table rewrite):
stored payloads keep their content, as jsonb's text form. Elsewhere (the
demo's SQLite) the column does not change, and the table must not be remade:
that would drop the trigger that fills ``commit_seq`` there (0002).
"""

from django.db import migrations

import gateway.ingest.fields


def _payload_as_json(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE ingest_exposure ALTER COLUMN payload TYPE json")


def _payload_as_jsonb(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE ingest_exposure ALTER COLUMN payload TYPE jsonb USING payload::jsonb"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0002_exposure_commit_seq"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="exposure",
                    name="payload",
                    field=gateway.ingest.fields.JSONTextField(),
                ),
            ],
            database_operations=[migrations.RunPython(_payload_as_json, _payload_as_jsonb)],
        ),
    ]
