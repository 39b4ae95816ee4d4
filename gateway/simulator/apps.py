from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    name = "gateway.simulator"
    label = "simulator"
