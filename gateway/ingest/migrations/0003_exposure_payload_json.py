"""Exposure payloads as PostgreSQL json (the text as written) instead of jsonb.

PostgreSQL converts the column with its jsonb-to-json cast (a table rewrite):
stored payloads keep their content, as jsonb's text form.
"""

from django.db import migrations

import gateway.ingest.fields


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0002_exposure_commit_seq"),
    ]

    operations = [
        migrations.AlterField(
            model_name="exposure",
            name="payload",
            field=gateway.ingest.fields.JSONTextField(),
        ),
    ]
