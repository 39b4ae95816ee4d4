from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "gateway.ingest"
    label = "ingest"
    verbose_name = "Ingest"
