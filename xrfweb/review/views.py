"""Review pages (dataset, job, model, comparison) and the JSON they draw from.

Every object is fetched through xrfweb.access, so someone else's dataset, job or model answers
404 on the page and on each JSON endpoint alike. JSON errors are {"error": message}: 400 for a
bad request, 409 when the object has nothing to show yet.
"""
import math

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.gzip import gzip_page

from enhancer import UserError
from xrfweb import access
from xrfweb.jobs import results
from xrfweb.jobs.models import Job
from xrfweb.registry.services import training_curves
from xrfweb.review import compare, data, limits, model_review
from xrfweb.review.plots import GRID_PX, OVERVIEW_PX, REGION_PX, heatmap, jsonable, window_from_px


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
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    return render(request, "review/dataset.html", {"dataset": dataset})


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
    job = access.get_job_for_user(request.user, job_id)
    formats = [(fmt, description) for fmt, (_, _, description) in results.FORMATS.items()]
    done = job.status == Job.Status.SUCCEEDED and job.kind == Job.Kind.ENHANCE and job.dataset
    first = job.dataset.elements[0] if done and job.dataset.elements else ""
    return render(request, "review/job.html", {"job": job, "formats": formats,
                                               "first_element": first})


def _job_review(request, job_id: int) -> data.JobReview:
    return data.prepare_job(access.get_job_for_user(request.user, job_id))


@json_view
def job_review(request, job_id: int):
    """Numbers for the page: totals, resolution, trust summary, downloads (builds on first use)."""
    job = access.get_job_for_user(request.user, job_id)
    review = data.prepare_job(job)
    downloads = {fmt: {"page": reverse("job-result", args=[job.id, fmt]),
                       "api": reverse("api-job-result", args=[job.id]) + f"?format={fmt}"}
                 for fmt in results.available(job)}
    return {**review.summary, "downloads": downloads}


@json_view
def job_maps(request, job_id: int):
    """Overviews of one element: before, after, difference, and the trust maps that exist
    (chi², and the uncertainty of an ensemble run)."""
    review = _job_review(request, job_id)
    element = request.GET.get("element") or review.elements[0]
    i = review.before.element_index(element)
    layers = ["before", "after", "difference"] + (
        ["chi2"] if review.summary["trust"].get("available") else []) + (
        ["uncertainty"] if review.summary.get("uncertainty_map") else [])
    return {"element": element,
            **{name: heatmap(review.layer(name)[i], review.grid(name), OVERVIEW_PX)
               for name in layers}}


@json_view
def job_region(request, job_id: int):
    review = _job_review(request, job_id)
    layer = request.GET.get("layer", "after")
    i = review.before.element_index(request.GET.get("element", ""))
    return _region(review.layer(layer)[i], review.grid(layer), request)


@json_view
def job_profile(request, job_id: int):
    """Before and after along one line (x0, y0) -> (x1, y1) in fine-grid pixels, each sampled
    on its own grid at full resolution (enhancer.xrfmap.line_profile)."""
    from enhancer.xrfmap import line_profile

    review = _job_review(request, job_id)
    i = review.before.element_index(request.GET.get("element", ""))
    x0, x1, y0, y1 = _box(request)
    s = review.summary["scale"]
    fine_nm = review.summary["fine_pixel_nm"]
    length = math.hypot(x1 - x0, y1 - y0)  # fine pixels
    after = line_profile(review.layer("after")[i], (y0, x0), (y1, x1))
    off = (s - 1) / 2  # fine px -> input px: input pixel j is centred on fine s*j + off
    before = line_profile(review.layer("before")[i], ((y0 - off) / s, (x0 - off) / s),
                          ((y1 - off) / s, (x1 - off) / s))

    def distance(n):  # along the line, from its start, in fine pixels and um
        px = [length * k / max(n - 1, 1) for k in range(n)]
        return {"px": px, "um": [p * fine_nm / 1000 for p in px] if fine_nm else None}

    return {"element": review.elements[i], "units": review.summary["units"],
            "before": {"distance": distance(len(before)), "values": before.tolist()},
            "after": {"distance": distance(len(after)), "values": after.tolist()}}


# --- model -------------------------------------------------------------------------------------

def _training_job(user, model):
    """The job that trained this model, for staff (users do not see training jobs)."""
    if not user.is_staff:
        return None
    return model.jobs.filter(kind=Job.Kind.TRAIN).order_by("-id").first()


@login_required
def model_detail(request, model_id: int):
    model = access.get_model_for_user(request.user, model_id)
    return render(request, "review/model.html", {
        "model": model, "training_job": _training_job(request.user, model),
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
    return render(request, "review/compare.html", {
        "models": models, "dataset": dataset, "element": element,
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
