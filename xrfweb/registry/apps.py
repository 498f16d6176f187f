from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RegistryConfig(AppConfig):
    name = "xrfweb.registry"
    label = "registry"

    def ready(self):
        from xrfweb.registry.shipped import register_shipped_models

        post_migrate.connect(register_shipped_models, sender=self)
