from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "xrfweb.api"
    label = "api"
