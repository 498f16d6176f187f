"""What the API (and the pages' live JSON) say about projects, datasets, models and jobs."""
from rest_framework import serializers

from xrfweb.jobs import results
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Dataset, Project
from xrfweb.registry.models import EnhancementModel


class ProjectSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    collaborators = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)

    class Meta:
        model = Project
        fields = ["id", "name", "owner", "collaborators", "created"]
        read_only_fields = ["id", "created"]


class DatasetSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name", read_only=True)
    pixel_nm = serializers.FloatField(read_only=True, allow_null=True,
                                      help_text="the scan step in nm (mean of x and y); null: unknown")
    scan_step_nm = serializers.ListField(child=serializers.FloatField(), read_only=True, allow_null=True,
                                         help_text="[x, y] scan step in nm; null: unknown")
    probe_fwhm_nm = serializers.ListField(child=serializers.FloatField(), read_only=True, allow_null=True,
                                          help_text="[x, y] probe FWHM in nm (x along columns); null: unknown")
    counts_estimate = serializers.FloatField(read_only=True, allow_null=True,
                                             help_text="peak counts estimated from the data's Poisson noise")
    measured_probe = serializers.SerializerMethodField(
        help_text="the measured probe staff attached (POST .../probe/): {name, pixel_nm, fwhm_nm: [x, y], "
                  "dataset_path}; jobs use it as the PSF. null: none")
    probe_estimate = serializers.JSONField(
        read_only=True, allow_null=True,
        help_text="the probe estimated from the map itself (POST .../probe-estimate/): null until "
                  "asked; {\"status\": \"running\", \"asked\", \"worker\", \"started\"}; then "
                  "{\"status\": \"done\", \"fwhm_nm\": [x, y], \"uncertainty_nm\": [x, y], ...} or "
                  "{\"status\": \"failed\", \"error\": words} (also when its worker stopped)")

    class Meta:
        model = Dataset
        fields = ["id", "project", "name", "status", "error", "elements", "shape",
                  "pixel_size_nm", "pixel_nm", "scan_step_nm", "probe_fwhm_nm", "counts_estimate",
                  "scalers", "source_format", "units", "size_bytes", "probe_estimate", "measured_probe",
                  "created"]
        read_only_fields = fields

    def get_measured_probe(self, dataset) -> dict | None:
        from xrfweb.projects.probes import public

        return public(dataset)


PHYSICS_HELP = "nm: one number, or \"x,y\" (x along columns, y along rows); empty: not stated"


class DatasetUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    pixel_nm = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                     help_text="the scan step, when the file does not say; " + PHYSICS_HELP)
    probe_fwhm_nm = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                          help_text="the probe's FWHM; " + PHYSICS_HELP)


class ProbeUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="one 2-D array: .npy, .tif/.tiff or HDF5; complex amplitudes "
                                           "(ptychography) are taken as |a|^2")
    pixel_nm = serializers.FloatField(help_text="the probe's pixel in nm (never assumed)")
    dataset_path = serializers.CharField(required=False, allow_blank=True,
                                         help_text="HDF5: the probe's dataset, when the file holds several")


class DatasetPhysicsSerializer(serializers.Serializer):
    pixel_nm = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                     help_text="the scan step; " + PHYSICS_HELP)
    probe_fwhm_nm = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                          help_text="the probe's FWHM; " + PHYSICS_HELP)


class ModelSerializer(serializers.ModelSerializer):
    pixel_nm = serializers.FloatField(read_only=True, allow_null=True,
                                      help_text="fine (output) pixel in nm")
    scale = serializers.IntegerField(read_only=True)
    scan_step_nm = serializers.FloatField(read_only=True, allow_null=True,
                                          help_text="the input pixel the model expects")
    probe_fwhm_nm = serializers.FloatField(read_only=True, allow_null=True)
    elements = serializers.JSONField(read_only=True)

    class Meta:
        model = EnhancementModel
        fields = ["id", "name", "status", "source", "pixel_nm", "scale", "scan_step_nm",
                  "probe_fwhm_nm", "elements", "description", "config", "created",
                  "benchmark", "approved_at", "approval_reason"]
        read_only_fields = fields


class ModelUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    weights = serializers.FileField(help_text="model.safetensors")
    config = serializers.FileField(help_text="model.json")


class TrainSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    datasets = serializers.ListField(child=serializers.IntegerField(), required=False,
                                     default=list)
    phantoms = serializers.IntegerField(required=False, default=0, min_value=0, max_value=64)
    probe_fwhm_nm = serializers.FloatField(required=False, allow_null=True,
                                           help_text="the simulated probe: a Gaussian of this FWHM in nm "
                                                     "(or measured_probe_dataset, not both)")
    pixel_nm = serializers.FloatField(help_text="fine (output) pixel in nm")
    scale = serializers.IntegerField()
    counts = serializers.FloatField()
    steps = serializers.IntegerField(required=False, allow_null=True)
    minutes = serializers.FloatField(required=False, allow_null=True)
    probe_dataset = serializers.IntegerField(required=False, allow_null=True,
                                             help_text="a dataset whose map (its first element) is read "
                                                       "as the probe, on the dataset's pixel")
    measured_probe_dataset = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="simulate with the measured probe staff attached to this dataset (POST "
                  "/api/v1/datasets/{id}/probe/) as the PSF, as the CLI's train --probe FILE "
                  "--probe-pixel-nm P: its FWHM is read from it (leave probe_fwhm_nm out). Recorded in "
                  "the job's params and the model's config (training.data.measured_probe). 400 when "
                  "the dataset has no measured probe attached")
    blocks = serializers.IntegerField(required=False, default=8, help_text="network depth")
    filters = serializers.IntegerField(required=False, default=32, help_text="network width")


class JobSerializer(serializers.ModelSerializer):
    queue_position = serializers.SerializerMethodField()
    duration_s = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "kind", "status", "progress", "message", "error", "queue_position",
                  "worker", "created", "started", "finished", "duration_s", "project", "dataset",
                  "model", "params", "cancel_requested", "results", "validation"]
        read_only_fields = fields

    validation = serializers.SerializerMethodField(
        help_text="the check against a fine scan (POST .../validate/): null until it is done; then "
                  "the report (psnr_db, ssim, frc_nm for input, enhanced, rl; offset_px, overlap_px) "
                  "or, when it failed, {\"error\": words}")

    def get_validation(self, job) -> dict | None:
        v = job.validation
        return None if not v or v.get("status") == "running" else v

    def get_queue_position(self, job) -> int | None:
        return job.queue_position()

    def get_duration_s(self, job) -> float | None:
        return job.duration_s()

    def get_results(self, job) -> list[str]:
        return results.available(job)


class JobCreateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    model = serializers.IntegerField()
    ensemble = serializers.IntegerField(required=False, default=1, min_value=1, max_value=8)
    scale = serializers.IntegerField(required=False, allow_null=True, default=None,
                                     help_text="output grid = scan step / scale (1-4); default: the "
                                               "model's own, or for universal the one that puts the "
                                               "probe's FWHM nearest 3 output pixels")


class ValidateSerializer(serializers.Serializer):
    fine_dataset = serializers.IntegerField(help_text="a ready dataset of the job's project: a finer "
                                                      "scan of part of the same area")
