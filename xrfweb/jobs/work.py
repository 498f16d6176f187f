"""What a job does, between claim and finish (runner.run): the calls into enhancer.

Imported by the tasks but imports the science (torch) only inside the functions, in the
worker's child process, so the prefork parent never touches CUDA.
"""
import shutil
from pathlib import Path

from django.db import transaction
from django.utils.text import slugify

from enhancer import Cancelled, UserError
from xrfweb.jobs import results
from xrfweb.jobs.models import Job
from xrfweb.paths import models_dir
from xrfweb.projects.models import Dataset
from xrfweb.registry.models import EnhancementModel


def job_physics(job: Job):
    """The physics a job was started with (its params), so that it runs with exactly what the
    user saw accepted, even if the dataset's stated step or probe changes meanwhile. None for
    a job from before jobs recorded it (enhancer then reads what the file says)."""
    from enhancer.physics import Physics

    p = job.params
    if "scan_step_nm" not in p:  # a job from before jobs recorded it: what the file says
        return None
    pair = (lambda v: tuple(v) if v else None)
    return Physics(pair(p.get("scan_step_nm")), None if p.get("probe_assumed") else pair(p.get("probe_fwhm_nm")),
                   p.get("counts"), counts_estimated=bool(p.get("counts_estimated")))


def with_measured_probe(job: Job, scan, physics):
    """The physics with the dataset's measured probe as the PSF, recorded in the map's provenance,
    exactly as the CLI's --probe FILE --probe-pixel-nm P (enhancer.probe.record_measured_probe).
    The probe must be the one the job was started with (it cannot change while the job waits)."""
    from enhancer.probe import record_measured_probe

    probe, pixel, name = attached_as_asked(job.params["measured_probe"], job.dataset)
    return record_measured_probe(scan, physics, probe, pixel, name)


def attached_as_asked(asked: dict, dataset: Dataset | None):
    """(intensity, pixel_nm, name) of the measured probe a job was started with (its params), read
    again from the dataset it is attached to; refused in words when it is attached no longer."""
    from xrfweb.projects.probes import read_attached

    attached = (dataset.measured_probe if dataset else None) or {}
    if any(attached.get(k) != asked[k] for k in ("name", "pixel_nm", "fwhm_nm")):
        where = f"attached to {dataset}" if dataset else "attached: its dataset was deleted"
        raise UserError(f"the measured probe {asked['name']} this job was started with is no longer "
                        f"{where}; start the job again")
    return read_attached(dataset)


def enhance(job: Job, reporter) -> None:
    from enhancer import pipeline
    from enhancer.bundle import load_bundle

    reporter.progress(0.0, "reading the map", force=True)
    scan = job.dataset.read_map()
    physics = job_physics(job)
    if job.params.get("measured_probe"):
        physics = with_measured_probe(job, scan, physics)
    bundle = load_bundle(job.model.bundle_ref)
    reporter.progress(0.02, "enhancing", force=True)
    result = pipeline.run(
        scan, bundle, scan_step_nm=job.params.get("pixel_nm"),  # a job from before physics was recorded
        physics=physics, scale=job.params.get("scale"),
        ensemble=int(job.params.get("ensemble", 1)),
        progress=lambda f: reporter.progress(0.02 + 0.85 * f, "enhancing"),
        cancel=reporter.cancelled,
    )
    reporter.progress(0.93, "writing the results", force=True)
    write_results(job, result)
    # The review page's maps, ready before the job is marked done, so its first view is instant.
    from xrfweb.review.data import build_job_review

    reporter.progress(0.96, "preparing the review", force=True)
    build_job_review(job)


def write_results(job: Job, result) -> None:
    """Every download, and the report the review page reads (enhancer.pipeline.Result)."""
    result.write_downloads(job.result_dir, results.FILES)


def train(job: Job, reporter) -> None:
    import numpy as np

    from enhancer.degrade import resample_probe
    from enhancer.formats import read_map_safely
    from enhancer.phantoms import recipe
    from enhancer.probe import simulation, trained_with
    from enhancer.train import train as train_network
    from enhancer.trainset import build_run

    p = job.params
    reporter.progress(0.0, "preparing training data", force=True)
    highres = []
    for dataset in Dataset.objects.filter(id__in=p["datasets"]):
        highres.append(read_map_safely(dataset.path, pixel_nm=dataset.pixel_nm_given).data)
    sources, measured, asked = {"datasets": p["datasets"]}, None, p.get("measured_probe")
    if asked:  # the dataset's attached probe is the PSF, as the CLI's train --probe FILE
        intensity, pixel, name = attached_as_asked(asked, Dataset.objects.filter(id=asked["dataset"]).first())
        measured = (intensity, pixel)
    degradation = simulation(p["probe_fwhm_nm"], p["pixel_nm"], int(p["scale"]), p["counts"], measured)
    if asked:
        sources["measured_probe"] = {"dataset": asked["dataset"], **trained_with(degradation, name, pixel)}
    # the CLI's run, with the phantom recipe the shipped models were last tuned with (its fine
    # probes are scaled to the probe's FWHM: a measured one's mean over x and y)
    fwhm = p["probe_fwhm_nm"] or float(np.mean(sources["measured_probe"]["fwhm_nm"]))
    run = build_run(highres, p["pixel_nm"], phantoms=int(p.get("phantoms") or 0), sources=sources,
                    **recipe(fwhm))
    probe = None
    if p.get("probe_dataset"):
        probe_set = Dataset.objects.get(id=p["probe_dataset"])
        if not probe_set.pixel_nm:
            raise UserError("the measured probe file needs a pixel size")
        probe_map = read_map_safely(probe_set.path, pixel_nm=probe_set.pixel_nm_given).data[0]
        probe = resample_probe(np.asarray(probe_map), probe_set.pixel_nm, p["pixel_nm"])
    folder = f"{job.id}-{slugify(p['name'])}"
    work_dir = models_dir() / f".{folder}.partial"  # kept across a redelivery: training resumes

    def progress(report: dict) -> None:
        reporter.progress(report.get("fraction", 0.0), f"training, step {report.get('step')}",
                          curve={k: report.get(k) for k in ("step", "loss", "val_psnr", "val_ssim")})

    try:
        bundle = train_network(
            run.maps, degradation, work_dir, steps=p.get("steps"), minutes=p.get("minutes"),
            blocks=int(p.get("blocks", 8)), filters=int(p.get("filters", 32)),
            progress=progress, cancel=reporter.cancelled, probe=probe,
            validation=run.validation, source_summary=run.summary,
        )
    except Cancelled:
        shutil.rmtree(work_dir, ignore_errors=True)  # no resume after a cancel
        raise
    (work_dir / "checkpoint.pt").unlink(missing_ok=True)  # a model needs only its bundle
    final = models_dir() / folder
    if final.exists():
        shutil.rmtree(final)
    work_dir.rename(final)
    with transaction.atomic():
        model = EnhancementModel.objects.create(
            name=p["name"], status=EnhancementModel.Status.DRAFT,
            source=EnhancementModel.Source.TRAINED, folder=folder, config=bundle.config,
            created_by=job.created_by,
        )
        Job.objects.filter(id=job.id).update(model=model)


def validate(job: Job, asked: dict) -> dict:
    """jobs.validate_job (through xrfweb.side_tasks.run): the job's result against the fine scan
    its request names (enhancer.validate.validate_result); the report, or why not in words."""
    from enhancer.formats import read_enhanced
    from enhancer.validate import validate_result

    outcome = {"fine_dataset": asked.get("fine_dataset")}
    try:
        fine_set = Dataset.objects.get(id=asked.get("fine_dataset"), project_id=job.project_id)
        fine_pixel = fine_set.pixel_nm
        if fine_pixel is None:
            raise UserError(f"the pixel size of {fine_set} is unknown")
        step = job.params.get("scan_step_nm") or job.dataset.scan_step_nm
        if not step:
            raise UserError(f"the scan step of {job.dataset} is unknown")
        fmt = results.native(job)
        if fmt is None:
            raise UserError(f"job {job.id} has no result to validate")
        inp = job.dataset.read_map()
        enhanced = read_enhanced(job.result_dir / results.FORMATS[fmt][0], inp)
        fine = fine_set.read_map()
        report = validate_result(inp, enhanced, fine, (step[0] + step[1]) / 2, fine_pixel,
                                 probe_fwhm_nm=job.params.get("probe_fwhm_nm"))
        outcome.update(report, status="done", fine_dataset_name=fine_set.original_name)
    except Dataset.DoesNotExist:
        outcome.update(status="failed", error="the fine scan's dataset was deleted")
    except UserError as e:
        outcome.update(status="failed", error=str(e))
    return outcome
