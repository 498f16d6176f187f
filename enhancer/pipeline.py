"""One enhancement, from a measured map to its written result: the CLI's `enhance` and the web's
job both run it, so a result is the same whichever way it was made.

    scan --enhance--> enhanced maps --fine axes--> trust report (chi^2 always; uncertainty with
    an ensemble; resolution; scan suggestions) --attach--> one XRFMap --write--> files

`run` does the science and returns a Result; `Result.write` writes it in the input's layout (the
CLI), `Result.write_downloads` every download the web offers (HDF5 in the input's layout, TIFF,
PNG, CSV) and the report. Each file carries the chi^2 map (formats/trustmaps.py says where).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import Bundle
from .xrfmap import XRFMap, with_fine_axes

HDF5_INPUTS = ("maps-v10", "maps-v9", "pyxrf")


@dataclass
class Result:
    scan: XRFMap  # the measured map, as read
    enhanced: XRFMap  # on the fine grid, with its trust maps (extras) and report (provenance)
    report: dict  # the trust report without its maps, plus totals: JSON-serialisable

    def write(self, out_path) -> Path:
        """The result in the layout the output's suffix names (the input's own where it keeps it:
        formats.write.output_layout)."""
        from .formats import write_result

        return write_result(self.scan, self.enhanced, out_path, self.enhanced.provenance.get("enhancement"))

    def write_downloads(self, folder, names: dict[str, str]) -> Path:
        """Every download into `folder` (names: format -> file name; formats h5, tiff, png, csv,
        report), built in a temp folder renamed into place when complete: a rerun's complete set
        replaces the old one, a failure leaves the old one (or none)."""
        # looked up at call time, so that a test can stand a failing writer in for one of them
        from . import formats

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            if self.scan.source_format in HDF5_INPUTS and "h5" in names:
                formats.write_result(self.scan, self.enhanced, tmp / names["h5"])
            if self.scan.source_format == "tiff-set":  # same member names and metadata as the input
                formats.write_result(self.scan, self.enhanced, tmp / names["tiff"])
            else:
                formats.export_tiff(self.enhanced, tmp / names["tiff"])
            formats.export_png(self.enhanced, tmp / names["png"])
            formats.export_csv(self.enhanced, tmp / names["csv"])
            (tmp / names["report"]).write_text(json.dumps(self.report, default=float))
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder


def run(scan: XRFMap, bundle: Bundle, *, scan_step_nm=None, ensemble: int = 1, device="auto",
        progress=None, cancel=None, physics=None, scale=None) -> Result:
    """Enhance every element of `scan`, add the fine grid's motor axes, compute the trust report
    and attach it. physics (enhancer.physics.Physics): the map's step, probe and dose; None is
    what the file says (its step, or scan_step_nm in nm over it) and the dose from the data.
    scale: None is the fit rule's (enhancer.fit). The fit rule refuses, in words, what does
    not fit; the same physics then enhances and re-measures the result (chi^2)."""
    from .enhance import enhance_map
    from .fit import require
    from .physics import physics_of
    from .trust import attach_trust, trust_report

    if scan_step_nm:
        scan = dataclasses.replace(scan, pixel_size_nm=(float(scan_step_nm),) * 2)
    physics = physics if physics is not None else physics_of(scan)
    scale = require(bundle.config, physics, scale).scale
    enhanced = enhance_map(scan, bundle, physics=physics, scale=scale, device=device, ensemble=ensemble,
                           progress=progress, cancel=cancel)
    enhanced = with_fine_axes(scan, enhanced, scale)
    report = trust_report(scan, enhanced, bundle, physics=physics, scale=scale)
    enhanced = attach_trust(enhanced, report)
    summary = {k: v for k, v in report.items() if k != "chi2"}
    summary["scale"] = scale
    summary["scan_step_nm"] = float(np.mean(enhanced.provenance["enhancement"]["input_pixel_nm"]))
    summary["physics"] = {k: enhanced.provenance["enhancement"][k] for k in (
        "input_pixel_nm", "probe_fwhm_nm", "probe_assumed", "scale", "counts", "counts_estimated", "note")}
    summary["fine_pixel_nm"] = float(np.mean(enhanced.pixel_size_nm))
    # The universal model's fit to the data after the network (refine.py): iterations and chi^2 per element
    summary["data_step"] = enhanced.provenance["enhancement"].get("data_step")
    if scan.provenance.get("measured_probe"):  # the PSF it ran with (its intensity is in the result)
        summary["measured_probe"] = {k: v for k, v in scan.provenance["measured_probe"].items() if k != "intensity"}
    # Blur and box sampling keep the mean: the totals before and after should agree.
    summary["totals"] = {el: {"before": float(a.mean()), "after": float(b.mean())}
                         for el, a, b in zip(scan.elements, scan.data, enhanced.data)}
    return Result(scan, enhanced, summary)


def difference(scan_maps, enhanced_maps, scale: int) -> np.ndarray:
    """What enhancement changed: the enhanced maps minus the scan interpolated onto the fine grid
    (bicubic, the interpolation the network starts from and the baselines use)."""
    from .baselines import upsample

    return np.asarray(enhanced_maps, np.float32) - upsample(np.asarray(scan_maps), scale)
