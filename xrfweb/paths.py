"""Where xrfweb keeps files, all under XRFWEB_DATA_DIR (never under a URL the web server maps)."""
import os
import uuid
from pathlib import Path

from django.conf import settings


def data_dir(*parts: str) -> Path:
    path = Path(settings.DATA_DIR, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def uploads_dir() -> Path:
    return data_dir("uploads")


def results_dir() -> Path:
    return data_dir("results")


def models_dir() -> Path:
    return data_dir("models")


def probes_dir() -> Path:
    """Measured probes attached to datasets (xrfweb/projects/probes.py)."""
    return data_dir("probes")


def tmp_dir() -> Path:
    return data_dir("tmp")


def new_name(suffix: str = "") -> str:
    """A generated file name: what the user called the file never reaches the filesystem."""
    return uuid.uuid4().hex + suffix


def replace_atomically(tmp: Path, final: Path) -> None:
    """Put a finished file or folder in place in one step, so readers never see half of it."""
    os.replace(tmp, final)
