from django.apps import AppConfig
from django.db.backends.signals import connection_created


class IngestConfig(AppConfig):
    name = "gateway.ingest"
    label = "ingest"
    verbose_name = "Ingest"

    def ready(self) -> None:
        from gateway.ingest.fields import json_loaded_as_text

        connection_created.connect(json_loaded_as_text, dispatch_uid="ingest-json-as-text")
