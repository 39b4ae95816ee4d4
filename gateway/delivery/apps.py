from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "gateway.delivery"
    label = "delivery"
    verbose_name = "Delivery"
