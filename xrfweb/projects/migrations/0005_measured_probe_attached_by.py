"""Probes attached before the quota counted them (0004) name no one: they now count towards the
project owner's quota, as a map uploaded to the project would."""
from django.db import migrations


def owner_holds_old_probes(apps, schema_editor):
    Dataset = apps.get_model("projects", "Dataset")
    for dataset in Dataset.objects.exclude(measured_probe=None).select_related("project"):
        probe = dataset.measured_probe
        if isinstance(probe, dict) and "attached_by" not in probe:
            probe["attached_by"] = dataset.project.owner_id
            dataset.measured_probe = probe
            dataset.save(update_fields=["measured_probe"])


class Migration(migrations.Migration):
    dependencies = [("projects", "0004_dataset_measured_probe")]
    operations = [migrations.RunPython(owner_holds_old_probes, migrations.RunPython.noop)]
