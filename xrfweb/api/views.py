"""REST API v1. Token auth (`Authorization: Token <key>`); every id goes through xrfweb.access."""
from django.utils import timezone
from django.utils.crypto import get_random_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from enhancer import UserError
from xrfweb import access
from xrfweb.api import serializers as s
from xrfweb.jobs import results, services
from xrfweb.jobs.runner import reap_stale_jobs
from xrfweb.projects.models import Project
from xrfweb.projects.probes import attach_probe, detach_probe
from xrfweb.projects.services import (Busy, delete_dataset, keep_upload, set_physics,
                                      start_probe_estimate)
from xrfweb.projects.uploads import takes_large_uploads, uploaded_file
from xrfweb.registry import services as registry
from xrfweb.side_tasks import reap_stale

ERROR = extend_schema(responses={400: OpenApiTypes.OBJECT})


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _uploaded(request, what: str | None):
    """The streamed file of the multipart field 'file' (`what` it should hold, for the error;
    None: the body is only parsed, so that an oversize one is refused before anything else)."""
    missing = what and f"send {what} as a multipart field named 'file'"
    return uploaded_file(request._request, request.FILES, missing)


@extend_schema(methods=["GET"], responses=s.ProjectSerializer(many=True))
@extend_schema(methods=["POST"], request=s.ProjectSerializer, responses={201: s.ProjectSerializer})
@api_view(["GET", "POST"])
def projects(request):
    if request.method == "POST":
        data = _valid(s.ProjectSerializer, request)
        project = Project.objects.create(name=data["name"], owner=request.user)
        return Response(s.ProjectSerializer(project).data, status=201)
    queryset = access.projects_for_user(request.user).prefetch_related("collaborators")
    return Response(s.ProjectSerializer(queryset.select_related("owner"), many=True).data)


@extend_schema(responses=s.ProjectSerializer)
@api_view(["GET"])
def project_detail(request, project_id: int):
    return Response(s.ProjectSerializer(access.get_project_for_user(request.user, project_id)).data)


@takes_large_uploads
@extend_schema(methods=["GET"], responses=s.DatasetSerializer(many=True))
@extend_schema(methods=["POST"], request={"multipart/form-data": s.DatasetUploadSerializer},
               responses={201: s.DatasetSerializer, 413: OpenApiTypes.OBJECT})
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, FormParser])
def project_datasets(request, project_id: int):
    project = access.get_project_for_user(request.user, project_id)
    if request.method == "GET":
        return Response(s.DatasetSerializer(project.datasets.all(), many=True).data)
    uploaded = _uploaded(request, "the map")
    dataset = keep_upload(request.user, project, uploaded, request.data.get("pixel_nm"),
                          request.data.get("probe_fwhm_nm"))
    return Response(s.DatasetSerializer(dataset).data, status=201)


@extend_schema(methods=["GET"], responses=s.DatasetSerializer)
@extend_schema(methods=["PATCH"], request=s.DatasetPhysicsSerializer,
               responses={200: s.DatasetSerializer, 400: OpenApiTypes.OBJECT})
@extend_schema(methods=["DELETE"], responses={204: None, 409: OpenApiTypes.OBJECT})
@api_view(["GET", "PATCH", "DELETE"])
@parser_classes([JSONParser, FormParser, MultiPartParser])
def dataset_detail(request, dataset_id: int):
    """PATCH states the map's step (pixel_nm) and/or probe (probe_fwhm_nm): anyone who sees the
    project may (a stranger gets 404, as for GET); an empty value clears a stated one. DELETE
    removes the upload, its jobs and their results (409 while a job on it runs)."""
    reap_stale()  # a probe estimate whose worker died shows failed with the reason
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    if request.method == "DELETE":
        try:
            delete_dataset(dataset)
        except Busy as e:
            return Response({"error": str(e)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)
    if request.method == "PATCH":
        set_physics(dataset, **{k: request.data.get(k) for k in request.data})
    return Response(s.DatasetSerializer(dataset).data)


@takes_large_uploads
@extend_schema(methods=["POST"], request={"multipart/form-data": s.ProbeUploadSerializer},
               responses={201: s.DatasetSerializer, 400: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT,
                          409: OpenApiTypes.OBJECT})
@extend_schema(methods=["DELETE"], parameters=[OpenApiParameter("probe_fwhm_nm", str, required=False,
               description="the probe FWHM to state instead; default: unknown")],
               responses={200: s.DatasetSerializer, 409: OpenApiTypes.OBJECT})
@api_view(["POST", "DELETE"])
@parser_classes([MultiPartParser, FormParser])
def dataset_probe(request, dataset_id: int):
    """Staff attach a measured probe (knife-edge or ptychographic) to a dataset: its jobs use it
    as the PSF and its FWHM becomes the dataset's probe. DELETE detaches it (the probe is then
    unknown, or ?probe_fwhm_nm=...). Others get 403; strangers 404; 409 while a job on it runs."""
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    access.require_staff(request.user, "attach a measured probe")
    try:
        if request.method == "DELETE":
            detach_probe(dataset, request.query_params.get("probe_fwhm_nm"))
            return Response(s.DatasetSerializer(dataset).data)
        attach_probe(dataset, _uploaded(request, "the probe"), request.data.get("pixel_nm"),
                     request.data.get("dataset_path"), by=request.user)
    except Busy as e:
        return Response({"error": str(e)}, status=status.HTTP_409_CONFLICT)
    return Response(s.DatasetSerializer(dataset).data, status=201)


@extend_schema(request=None, responses={202: s.DatasetSerializer, 400: OpenApiTypes.OBJECT,
                                        409: OpenApiTypes.OBJECT})
@api_view(["POST"])
def dataset_probe_estimate(request, dataset_id: int):
    """Estimate the probe's FWHM from the map itself on a worker (the dataset page's "Estimate
    the probe"): 202 with `probe_estimate` running; the dataset's detail holds the estimate (or
    why the map cannot show it) once done. 400: the map is not ready or its scan step is
    unknown; 409: an estimate of this map is running."""
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    return Response(s.DatasetSerializer(start_probe_estimate(dataset)).data,
                    status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=s.ModelSerializer(many=True))
@api_view(["GET"])
def models(request):
    return Response(s.ModelSerializer(access.models_for_user(request.user), many=True).data)


@extend_schema(responses=s.ModelSerializer)
@api_view(["GET"])
def model_detail(request, model_id: int):
    return Response(s.ModelSerializer(access.get_model_for_user(request.user, model_id)).data)


class StatusChange(serializers.Serializer):
    status = serializers.ChoiceField(choices=["draft", "approved", "retired"])
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="why approve although the approval benchmark did "
                                             "not pass (recorded)")


@extend_schema(request=StatusChange, responses=s.ModelSerializer)
@api_view(["POST"])
def model_status(request, model_id: int):
    access.require_staff(request.user)
    model = access.get_model_for_user(request.user, model_id)
    change = _valid(StatusChange, request)
    registry.set_status(model, change["status"], request.user, change["reason"])
    return Response(s.ModelSerializer(model).data)


@extend_schema(request=s.TrainSerializer, responses={201: s.JobSerializer, 400: OpenApiTypes.OBJECT})
@api_view(["POST"])
@parser_classes([JSONParser, FormParser, MultiPartParser])
def model_train(request):
    """Staff train a model by simulated degradation of datasets and/or phantoms. The probe is a
    Gaussian of probe_fwhm_nm, or the measured probe attached to measured_probe_dataset (the
    PSF, as the CLI's train --probe); 400 names what is missing or wrong."""
    access.require_staff(request.user)
    data = _valid(s.TrainSerializer, request)
    name = data.get("name") or (f"trained-{timezone.now():%Y%m%d-%H%M}-"
                                f"{get_random_string(4).lower()}")
    probe, measured = data.get("probe_dataset"), data.get("measured_probe_dataset")
    job = services.start_training(
        request.user, name=name,
        datasets=[access.get_dataset_for_user(request.user, i) for i in data["datasets"]],
        phantoms=data["phantoms"], probe_fwhm_nm=data.get("probe_fwhm_nm"),
        pixel_nm=data["pixel_nm"], scale=data["scale"], counts=data["counts"],
        steps=data.get("steps"), minutes=data.get("minutes"),
        probe_dataset=access.get_dataset_for_user(request.user, probe) if probe else None,
        blocks=data["blocks"], filters=data["filters"],
        measured_probe_dataset=access.get_dataset_for_user(request.user, measured) if measured else None,
    )
    return Response(s.JobSerializer(job).data, status=201)


@takes_large_uploads
@extend_schema(request={"multipart/form-data": s.ModelUploadSerializer},
               responses={201: s.ModelSerializer})
@api_view(["POST"])
@parser_classes([MultiPartParser])
def model_upload(request):
    access.require_staff(request.user)
    _uploaded(request, None)
    data = _valid(s.ModelUploadSerializer, request)
    model = registry.add_uploaded_bundle(request.user, data["name"], data["weights"],
                                         data["config"])
    return Response(s.ModelSerializer(model).data, status=201)


@extend_schema(methods=["GET"], responses=s.JobSerializer(many=True))
@extend_schema(methods=["POST"], request=s.JobCreateSerializer, responses={201: s.JobSerializer})
@api_view(["GET", "POST"])
def jobs(request):
    if request.method == "GET":
        reap_stale_jobs()
        queryset = access.jobs_for_user(request.user)[:200]
        return Response(s.JobSerializer(queryset, many=True).data)
    data = _valid(s.JobCreateSerializer, request)
    dataset = access.get_dataset_for_user(request.user, data["dataset"])
    model = access.get_model_for_user(request.user, data["model"])
    job = services.start_enhancement(request.user, dataset, model, ensemble=data["ensemble"],
                                     scale=data["scale"])
    return Response(s.JobSerializer(job).data, status=201)


@extend_schema(responses=s.JobSerializer)
@api_view(["GET"])
def job_detail(request, job_id: int):
    reap_stale_jobs()
    return Response(s.JobSerializer(access.get_job_for_user(request.user, job_id)).data)


@extend_schema(request=None, responses=s.JobSerializer)
@api_view(["POST"])
def job_cancel(request, job_id: int):
    job = services.request_cancel(access.get_job_for_user(request.user, job_id))
    return Response(s.JobSerializer(job).data)


@extend_schema(request=s.ValidateSerializer, responses={202: s.JobSerializer, 400: OpenApiTypes.OBJECT})
@api_view(["POST"])
@parser_classes([JSONParser, FormParser, MultiPartParser])
def job_validate(request, job_id: int):
    """Validate the job's result against a fine scan on the worker; `validation` in the job's
    detail holds the report once done."""
    job = access.get_job_for_user(request.user, job_id)
    data = _valid(s.ValidateSerializer, request)
    job = services.start_validation(job, data["fine_dataset"])
    return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    parameters=[OpenApiParameter("format", str, enum=list(results.FORMATS),
                                 description="default: the job's own (h5 for an HDF5 input, "
                                             "else tiff)")],
    responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 409: OpenApiTypes.OBJECT},
)
@api_view(["GET"])
def job_result(request, job_id: int):
    job = access.get_job_for_user(request.user, job_id)
    fmt = request.query_params.get("format") or results.native(job) or "h5"
    if fmt not in results.FORMATS:
        raise UserError(f"format must be one of {', '.join(results.FORMATS)}")
    try:
        return results.result_response(job, fmt)
    except results.ResultNotReady as e:
        return Response({"error": str(e)}, status=status.HTTP_409_CONFLICT)
