"""Review pages (dataset, job, model, comparison) and the JSON they draw from.

Every object is fetched through xrfweb.access, so someone else's dataset, job or model answers
404 on the page and on each JSON endpoint alike. JSON errors are {"error": message}: 400 for a
bad request, 409 when the object has nothing to show yet.
"""
import math

import numpy as np
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.gzip import gzip_page

from enhancer import UserError
from xrfweb import access
from xrfweb.jobs import results
from xrfweb.jobs.models import Job
from xrfweb.registry.services import training_curves
from xrfweb.review import compare, data, limits, model_review
from xrfweb.review.plots import GRID_PX, OVERVIEW_PX, REGION_PX, heatmap, jsonable, window_from_px
from xrfweb.side_tasks import reap_stale


def json_view(view):
    """Login, gzip (maps are most of a page's bytes), and errors as JSON with a message."""
    @login_required
    @gzip_page
    def wrapped(request, *args, **kwargs):
        try:
            return JsonResponse(jsonable(view(request, *args, **kwargs)))
        except UserError as e:
            return JsonResponse({"error": str(e)}, status=400)
        except data.NotReady as e:
            return JsonResponse({"error": str(e)}, status=409)
        except limits.Busy as e:
            response = JsonResponse({"error": str(e), "retry_after_s": limits.RETRY_AFTER_S},
                                    status=429)
            response["Retry-After"] = str(limits.RETRY_AFTER_S)
            return response
    wrapped.__name__ = view.__name__
    return wrapped


def _number(request, name: str) -> float:
    raw = request.GET.get(name, "")
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number")
    return value


def _box(request) -> tuple[float, float, float, float]:
    return tuple(_number(request, k) for k in ("x0", "x1", "y0", "y1"))


def _region(array, grid, request) -> dict:
    """The zoom window (x0, x1, y0, y1 in the grid's px units) at full resolution when small."""
    return heatmap(array, grid, REGION_PX, window_from_px(grid, *_box(request)))


# --- dataset ---------------------------------------------------------------------------------

@login_required
def dataset_detail(request, dataset_id: int):
    reap_stale()  # its probe estimate: failed with the reason if its worker died
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    page = {"page": "datasetPage", "urls": {
        "maps": reverse("dataset-maps", args=[dataset.id]),
        "region": reverse("dataset-region", args=[dataset.id])}}
    return render(request, "review/dataset.html", {"dataset": dataset, "page": page})


@json_view
def dataset_maps(request, dataset_id: int):
    """Every chosen element's overview (the grid) with what the controls need to know."""
    mapset = data.load_dataset(access.get_dataset_for_user(request.user, dataset_id),
                               guard=limits.heavy(request.user))
    scaler = request.GET.get("scaler", "")
    chosen = request.GET.getlist("elements") or mapset.elements  # ?elements=Fe&elements=Zn
    return {"elements": mapset.elements, "scalers": list(mapset.scalers), "scaler": scaler,
            "units": mapset.units_for(scaler), "pixel_nm": mapset.pixel_nm,
            "shape": list(mapset.maps.shape),
            "maps": {el: heatmap(mapset.element_map(el, scaler), mapset.grid, GRID_PX)
                     for el in chosen}}


@json_view
def dataset_region(request, dataset_id: int):
    mapset = data.load_dataset(access.get_dataset_for_user(request.user, dataset_id))
    scaler = request.GET.get("scaler", "")
    return _region(mapset.element_map(request.GET.get("element", ""), scaler), mapset.grid,
                   request)


# --- enhancement job ---------------------------------------------------------------------------

@login_required
def job_detail(request, job_id: int):
    reap_stale()  # its validation: failed with the reason if its worker died
    job = access.get_job_for_user(request.user, job_id)
    formats = [(fmt, description) for fmt, (_, _, description) in results.FORMATS.items()]
    done = job.status == Job.Status.SUCCEEDED and job.kind == Job.Kind.ENHANCE and job.dataset
    first = job.dataset.elements[0] if done and job.dataset.elements else ""
    urls = {name: reverse(f"job-{name}", args=[job.id])
            for name in ("review", "maps", "region", "profile", "roi")}
    urls["status"] = reverse("job-status-json", args=[job.id])
    page = {"page": "jobPage", "urls": urls,
            # A finished job: its review and first map are fetched while plotly.js is parsed.
            "prefetch": {"review": urls["review"],
                         "maps": f"{urls['maps']}?{urlencode({'element': first})}"}
            if first else None}
    return render(request, "review/job.html", {"job": job, "formats": formats, "page": page,
                                               "scalers": job.dataset.scalers if done else [],
                                               **validation_context(job, done)})


def validation_context(job: Job, done) -> dict:
    """The job page's check against a fine scan: the report's numbers as rows, and the ready
    datasets of the job's project a user may choose as the fine scan."""
    v = job.validation or {}
    rows = [(label, v["psnr_db"].get(key), v["ssim"].get(key), v["frc_nm"].get(key))
            for key, label in (("input", "input (bicubic)"), ("enhanced", "enhanced"),
                               ("rl", "Richardson-Lucy"))] if v.get("status") == "done" else []
    choices = (job.project.datasets.filter(status="ready").exclude(id=job.dataset_id)
               if done and job.project else [])
    return {"validation": v, "validation_rows": rows, "fine_choices": choices}


def _job_review(request, job_id: int) -> data.JobReview:
    return data.prepare_job(access.get_job_for_user(request.user, job_id))


def _layer(review: data.JobReview, name: str, i: int, scaler: str) -> np.ndarray:
    """One element's layer, divided by a scaler (I0) when one is named, by the input's rule
    (enhancer.formats.normalize_by_scaler, PyXRF's). On the fine grid each pixel is divided by
    the I0 of the input pixel it lies in; the difference is taken between normalised maps; chi²
    has no units and is left as it is."""
    if not scaler or name == "chi2":
        return review.layer(name)[i]
    element = review.elements[i]
    if name == "before":
        return review.before.element_map(element, scaler)
    if name == "difference":  # the pipeline's rule, between the normalised maps
        from enhancer.pipeline import difference

        return difference(review.before.element_map(element, scaler),
                          _layer(review, "after", i, scaler), review.summary["scale"])
    from enhancer.formats import normalize_by_scaler
    from enhancer.xrfmap import XRFMap

    s = review.summary["scale"]
    scalers = review.before.scalers
    chosen = {scaler: scalers[scaler]} if scaler in scalers else scalers  # else: its error
    fine = {k: np.repeat(np.repeat(np.asarray(v), s, axis=0), s, axis=1)
            for k, v in chosen.items()}
    one = XRFMap([element], np.asarray(review.layer(name)[i])[None], scalers=fine)
    return normalize_by_scaler(one, scaler).data[0]


@json_view
def job_review(request, job_id: int):
    """Numbers for the page: totals, resolution, trust summary, downloads (builds on first use)."""
    job = access.get_job_for_user(request.user, job_id)
    review = data.prepare_job(job)
    downloads = {fmt: {"page": reverse("job-result", args=[job.id, fmt]),
                       "api": reverse("api-job-result", args=[job.id]) + f"?format={fmt}"}
                 for fmt in results.available(job)}
    v = job.validation or {}  # on the row, not in the cached summary: it changes after the job
    validated = None
    if v.get("status") == "done":  # box_px: the overlap on the fine grid [row, col, height, width]
        (oy, ox), (h, w) = v["offset_px"], v["overlap_px"]
        validated = {"resolution_nm": v["frc_nm"].get("enhanced"), "fine_dataset": v.get("fine_dataset_name"),
                     "box_px": [max(0, oy), max(0, ox), h, w]}
    return {**review.summary, "downloads": downloads, "validation": validated}


@json_view
def job_maps(request, job_id: int):
    """Overviews of one element: before, after, difference, and the trust maps that exist
    (chi², and the uncertainty of an ensemble run); ?scaler= normalises by I0."""
    review = _job_review(request, job_id)
    element = request.GET.get("element") or review.elements[0]
    scaler = request.GET.get("scaler", "")
    i = review.before.element_index(element)
    layers = ["before", "after", "difference"] + (
        ["chi2"] if review.summary["trust"].get("available") else []) + (
        ["uncertainty"] if review.summary.get("uncertainty_map") else [])
    return {"element": element, "scaler": scaler, "units": review.before.units_for(scaler),
            **{name: heatmap(_layer(review, name, i, scaler), review.grid(name), OVERVIEW_PX)
               for name in layers}}


@json_view
def job_region(request, job_id: int):
    review = _job_review(request, job_id)
    layer = request.GET.get("layer", "after")
    i = review.before.element_index(request.GET.get("element", ""))
    return _region(_layer(review, layer, i, request.GET.get("scaler", "")), review.grid(layer),
                   request)


@json_view
def job_profile(request, job_id: int):
    """Before and after along one line (x0, y0) -> (x1, y1) in fine-grid pixels, each sampled
    on its own grid at full resolution (enhancer.xrfmap.line_profile)."""
    from enhancer.xrfmap import line_profile

    review = _job_review(request, job_id)
    i = review.before.element_index(request.GET.get("element", ""))
    scaler = request.GET.get("scaler", "")
    x0, x1, y0, y1 = _box(request)
    s = review.summary["scale"]
    fine_nm = review.summary["fine_pixel_nm"]
    length = math.hypot(x1 - x0, y1 - y0)  # fine pixels
    after = line_profile(_layer(review, "after", i, scaler), (y0, x0), (y1, x1))
    off = (s - 1) / 2  # fine px -> input px: input pixel j is centred on fine s*j + off
    before = line_profile(_layer(review, "before", i, scaler), ((y0 - off) / s, (x0 - off) / s),
                          ((y1 - off) / s, (x1 - off) / s))

    def distance(n):  # along the line, from its start, in fine pixels and um
        px = [length * k / max(n - 1, 1) for k in range(n)]
        return {"px": px, "um": [p * fine_nm / 1000 for p in px] if fine_nm else None}

    return {"element": review.elements[i], "units": review.before.units_for(scaler),
            "before": {"distance": distance(len(before)), "values": before.tolist()},
            "after": {"distance": distance(len(after)), "values": after.tolist()}}


@json_view
def job_roi(request, job_id: int):
    """Every element's totals inside a rectangle (x0, x1, y0, y1 in fine-grid pixels): the
    pixels whose centres lie inside it, on each map's own grid. Sums are in input pixels (the
    enhanced map's sum divided by scale²), so before and after compare directly."""
    review = _job_review(request, job_id)
    scaler = request.GET.get("scaler", "")
    x0, x1, y0, y1 = _box(request)
    x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    s = review.summary["scale"]
    off = (s - 1) / 2

    def span(lo, hi, step, offset, n):  # indices whose centres step*k + offset lie in [lo, hi]
        return max(0, math.ceil((lo - offset) / step)), min(n, math.floor((hi - offset) / step) + 1)

    h, w = review.before.maps.shape[1:]
    (r0, r1), (c0, c1) = span(y0, y1, s, off, h), span(x0, x1, s, off, w)
    (fr0, fr1), (fc0, fc1) = span(y0, y1, 1, 0, h * s), span(x0, x1, 1, 0, w * s)
    if r1 <= r0 or c1 <= c0:
        raise UserError("the rectangle holds no input pixel: draw a larger one")
    rows = []
    for i, element in enumerate(review.elements):
        before = np.asarray(_layer(review, "before", i, scaler)[r0:r1, c0:c1], np.float64)
        after = np.asarray(_layer(review, "after", i, scaler)[fr0:fr1, fc0:fc1], np.float64)
        rows.append({"element": element, "before_sum": before.sum(),
                     "after_sum": after.sum() / s**2, "before_mean": before.mean(),
                     "after_mean": after.mean()})
    fine_nm = review.summary["fine_pixel_nm"]
    return {"units": review.before.units_for(scaler), "scaler": scaler,
            "input_px": {"rows": [r0, r1 - 1], "cols": [c0, c1 - 1]},
            "fine_px": {"rows": [fr0, fr1 - 1], "cols": [fc0, fc1 - 1]},
            "area_um2": ((r1 - r0) * (c1 - c0) * (s * fine_nm / 1000) ** 2) if fine_nm else None,
            "elements": rows}


# --- model -------------------------------------------------------------------------------------

def _training_job(user, model):
    """The job that trained this model, for staff (users do not see training jobs)."""
    if not user.is_staff:
        return None
    return model.jobs.filter(kind=Job.Kind.TRAIN).order_by("-id").first()


@login_required
def model_detail(request, model_id: int):
    model = access.get_model_for_user(request.user, model_id)
    page = {"page": "modelPage", "urls": {"curves": reverse("model-curves", args=[model.id]),
                                          "example": reverse("model-example", args=[model.id])}}
    try:  # a config that fails the check still gets its page, saying why, not a 500
        model.spec
        config_error = ""
    except UserError as e:
        config_error = str(e)
    return render(request, "review/model.html", {
        "model": model, "training_job": _training_job(request.user, model), "page": page,
        "config_error": config_error,
        "others": access.models_for_user(request.user).exclude(id=model.id)})


@json_view
def model_curves(request, model_id: int):
    model = access.get_model_for_user(request.user, model_id)
    config = model_review.bundle_config(model)
    job = _training_job(request.user, model)
    return {"history": model_review.history(config), "steps": training_curves(model),
            "training": bool(job and not job.is_finished),
            "benchmark": model_review.benchmark(config)}


@json_view
def model_example(request, model_id: int):
    return model_review.example(access.get_model_for_user(request.user, model_id),
                                guard=limits.heavy(request.user))


# --- comparison --------------------------------------------------------------------------------

def _compared(request):
    """The models (?models=1,2 or ?ids=1&ids=2), dataset and element of a comparison."""
    raw = ",".join(request.GET.getlist("models") + request.GET.getlist("ids"))
    ids = [i.strip() for i in raw.split(",") if i.strip()]
    models = [access.get_model_for_user(request.user, i) for i in dict.fromkeys(ids)]
    dataset_id = request.GET.get("dataset") or None
    dataset = access.get_dataset_for_user(request.user, dataset_id) if dataset_id else None
    return models, dataset, request.GET.get("element", "")


@login_required
def compare_maps(request):
    models, dataset, element = _compared(request)
    page = {"page": "comparePage",
            "urls": {"data": f"{reverse('compare-maps-json')}?{request.GET.urlencode()}"}}
    return render(request, "review/compare.html", {
        "models": models, "dataset": dataset, "element": element, "page": page,
        "all_models": access.models_for_user(request.user),
        "datasets": access.datasets_for_user(request.user).filter(status="ready")[:100],
        "query": request.GET.urlencode()})


@json_view
def compare_json(request):
    models, dataset, element = _compared(request)
    guard = limits.heavy(request.user)
    mapset = data.load_dataset(dataset, guard=guard) if dataset else None
    if mapset and not element:
        element = mapset.elements[0]
    return compare.comparison(models, dataset, mapset, element, guard=limits.heavy(request.user))
