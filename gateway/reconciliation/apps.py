from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "gateway.reconciliation"
    label = "reconciliation"
    verbose_name = "Reconciliation"
