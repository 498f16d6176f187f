"""Model management (staff): external bundles and status changes."""
import shutil
import tempfile
from pathlib import Path

from django.db import transaction
from django.utils.text import slugify

from enhancer import UserError
from xrfweb.paths import models_dir, new_name
from xrfweb.registry.models import EnhancementModel

S = EnhancementModel.Status


def add_uploaded_bundle(user, name: str, weights, config_file) -> EnhancementModel:
    """An external bundle: safetensors weights + JSON config, checked without unpickling anything.
    Registered as a draft; staff approve it after a look."""
    from enhancer.bundle import CONFIG, WEIGHTS, validate_bundle_files

    name = (name or "").strip()
    if not name or not slugify(name):
        raise UserError("give the model a name with letters or digits")
    if EnhancementModel.objects.filter(name=name).exists():
        raise UserError(f"a model named {name!r} exists already")
    if weights is None or config_file is None:
        raise UserError("upload both files: the weights (.safetensors) and the config (.json)")
    folder = new_name()
    tmp = Path(tempfile.mkdtemp(prefix=".upload-", dir=models_dir()))
    try:
        for upload, filename in ((weights, WEIGHTS), (config_file, CONFIG)):
            with open(tmp / filename, "wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
        config = validate_bundle_files(tmp / WEIGHTS, tmp / CONFIG)  # UserError if not ours
        with transaction.atomic():
            model = EnhancementModel.objects.create(
                name=name, status=S.DRAFT, source=EnhancementModel.Source.UPLOADED,
                folder=folder, config=config, created_by=user,
            )
            tmp.rename(models_dir() / folder)
        return model
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def set_status(model: EnhancementModel, status: str, user=None, reason: str = ""
               ) -> EnhancementModel:
    """Approve (offered to users: only past the approval benchmark, or with a stated reason),
    retire (hidden from new jobs, kept for old results), or back to draft."""
    if status not in S.values:
        raise UserError(f"status must be one of {', '.join(S.values)}")
    if status == S.APPROVED:
        from xrfweb.registry.approval import approve

        return approve(model, user, reason)
    model.status = status
    model.save(update_fields=["status"])
    return model


def training_curves(model: EnhancementModel) -> list[dict]:
    """The progress reports of the job that trained this model (empty for shipped/uploaded)."""
    job = model.jobs.filter(kind="train").order_by("-id").first()
    return job.curves if job else []
