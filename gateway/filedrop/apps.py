from django.apps import AppConfig


class FiledropConfig(AppConfig):
    name = "gateway.filedrop"
    label = "filedrop"
    verbose_name = "File drops"
