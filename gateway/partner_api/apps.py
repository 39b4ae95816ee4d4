from django.apps import AppConfig


class PartnerApiConfig(AppConfig):
    name = "gateway.partner_api"
    label = "partner_api"
