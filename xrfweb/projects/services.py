"""Keeping uploads: the one place an uploaded file becomes a Dataset."""
import math
import os

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from enhancer import UserError
from xrfweb.paths import new_name, uploads_dir
from xrfweb.projects.models import Dataset, Project
from xrfweb.projects.tasks import parse_dataset
from xrfweb.projects.uploads import sniff
from xrfweb.queueing import send_after_commit

READABLE = "HDF5 (MAPS, PyXRF), TIFF, a zip of TIFF maps, or NPY"


def parse_pixel_nm(raw) -> float | None:
    """The uploader's pixel size in nm: empty means 'the file says' (or unknown)."""
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"pixel size {raw!r} is not a number (nm)") from None
    if not math.isfinite(value) or not 0 < value < 1e6:
        raise UserError("pixel size must be a positive number of nanometres")
    return value


def used_bytes(user) -> int:
    return Dataset.objects.filter(uploaded_by=user).aggregate(s=Sum("size_bytes"))["s"] or 0


def keep_upload(user, project: Project, uploaded, pixel_nm=None) -> Dataset:
    """Move a streamed upload (a TemporaryUploadedFile) into the store under a generated name,
    record it, and queue its parsing. The user's file name is kept only as a label."""
    pixel_nm = parse_pixel_nm(pixel_nm)
    size = uploaded.size
    if size == 0:
        raise UserError("the file is empty")
    quota = settings.XRFWEB_USER_QUOTA_MB * 1024 * 1024
    if used_bytes(user) + size > quota:
        raise UserError(f"this upload would take you past your {settings.XRFWEB_USER_QUOTA_MB} MB "
                        "storage quota; delete some datasets first")
    found = sniff(uploaded.temporary_file_path())
    if found is None:
        raise UserError(f"{uploaded.name} is not a file xrfweb reads ({READABLE})")
    kind, suffix = found
    stored = new_name(suffix)
    path = uploads_dir() / stored
    os.replace(uploaded.temporary_file_path(), path)  # same disk: a rename, not a copy
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                project=project, uploaded_by=user, original_name=(uploaded.name or "upload")[:255],
                stored_name=stored, kind=kind, size_bytes=size, pixel_nm_given=pixel_nm,
            )
            send_after_commit(parse_dataset, dataset.id)
    except Exception:
        path.unlink(missing_ok=True)  # nothing half-kept
        raise
    return dataset
