"""Rows for the fault tests: a ready dataset backed by a real MAPS file, and a registered model
whose size sets how long an enhancement runs (seconds on a 2-core CPU)."""
from __future__ import annotations

import shutil

from tests.conftest import make_dataset
from tests.formats_fixtures import write_maps_v10


def ready_dataset(project, user, rows=24, cols=32, name="scan.h5"):
    """A real MAPS v10 file (Fe, Zn; 50 nm step) stored and recorded as the parser leaves it."""
    from xrfweb.paths import tmp_dir

    path = tmp_dir() / f"source-{rows}x{cols}.h5"
    write_maps_v10(path, elements=("Fe", "Zn"), rows=rows, cols=cols, pixel_um=(0.05, 0.05))
    content = path.read_bytes()
    path.unlink()
    return make_dataset(project, user, content=content, name=name, elements=("Fe", "Zn"),
                        shape=(2, rows, cols), pixel_nm=50.0)


def model(name: str, blocks: int = 1, filters: int = 4):
    """An approved element-agnostic x2 model (25 nm fine pixel, so 50 nm scans fit)."""
    from enhancer.bundle import load_bundle, save_bundle
    from enhancer.degrade import Degradation
    from enhancer.network import ResidualEnhancer
    from xrfweb.paths import models_dir
    from xrfweb.registry.models import EnhancementModel

    config = {"name": name, "elements": "any", "pixel_nm": 25.0, "scale": 2,
              "degradation": Degradation(probe_fwhm_nm=80.0, pixel_nm=25.0, scale=2).to_dict()}
    shutil.rmtree(models_dir() / name, ignore_errors=True)
    folder = save_bundle(models_dir() / name, ResidualEnhancer(1, blocks, filters), config)
    return EnhancementModel.objects.create(
        name=name, status="approved", source=EnhancementModel.Source.UPLOADED, folder=name,
        config=load_bundle(folder).config)
