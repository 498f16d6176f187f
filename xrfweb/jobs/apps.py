from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "xrfweb.jobs"
    label = "jobs"
