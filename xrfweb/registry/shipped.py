"""The bundles shipped in enhancer/models/ are approved models on every fresh database."""
import json


def register_shipped_models(sender=None, using="default", verbosity=1, **kwargs) -> list[str]:
    """Runs after every `migrate`; idempotent. A bundle folder that is not there yet is skipped.
    Staff decisions (approve, retire) on an already registered model are kept."""
    from enhancer.bundle import CONFIG, shipped_bundles
    from xrfweb.registry.models import EnhancementModel

    added = []
    for folder in shipped_bundles():
        config = json.loads((folder / CONFIG).read_text())
        model, created = EnhancementModel.objects.using(using).get_or_create(
            name=folder.name,
            defaults=dict(status=EnhancementModel.Status.APPROVED,
                          source=EnhancementModel.Source.SHIPPED, folder=folder.name,
                          config=config, description=config.get("description", "")),
        )
        if created:
            added.append(folder.name)
        elif model.source == EnhancementModel.Source.SHIPPED and model.config != config:
            model.config = config  # the bundle was retrained: show its current config
            model.save(update_fields=["config"])
    if added and verbosity:
        print(f"Registered shipped models: {', '.join(added)}")
    return added
