"""Create the single PrivacySettings row with the states whose law requires honouring GPC."""

from django.db import migrations

# States whose privacy laws (or regulations under them) require treating Global
# Privacy Control as an opt-out; editable in admin as laws change.
GPC_STATES = ["CA", "CO", "CT", "DE", "MD", "MN", "MT", "NE", "NH", "NJ", "OR", "TX"]


def create_settings(apps, schema_editor):
    PrivacySettings = apps.get_model("partners", "PrivacySettings")
    PrivacySettings.objects.get_or_create(pk=1, defaults={"gpc_states": GPC_STATES})


class Migration(migrations.Migration):
    dependencies = [("partners", "0002_globalvendorlist_privacysettings_and_more")]

    operations = [migrations.RunPython(create_settings, migrations.RunPython.noop)]
