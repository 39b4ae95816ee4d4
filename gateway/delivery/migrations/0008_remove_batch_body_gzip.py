from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0007_bodies_and_cursors"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="batch",
            name="body_gzip",
        ),
    ]
