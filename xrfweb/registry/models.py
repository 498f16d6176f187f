from django.conf import settings
from django.db import models

from xrfweb.paths import models_dir


class EnhancementModel(models.Model):
    """A trained network (an enhancer bundle) that jobs may use once staff approve it."""

    class Status(models.TextChoices):
        DRAFT = "draft"  # trained or uploaded, not yet offered to users
        APPROVED = "approved"  # offered for new jobs
        RETIRED = "retired"  # hidden from new jobs, kept for the provenance of old results

    class Source(models.TextChoices):
        SHIPPED = "shipped"
        TRAINED = "trained"
        UPLOADED = "uploaded"

    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    source = models.CharField(max_length=10, choices=Source.choices)
    # Shipped bundles are found by name (enhancer.bundle); others live in DATA_DIR/models/<folder>.
    folder = models.CharField(max_length=100)
    config = models.JSONField(default=dict)  # the bundle's model.json
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)
    # The approval benchmark (xrfweb.registry.approval), run by a worker before staff approve:
    # {"status": queued|running|done|failed, "cases", "summary", "gain_input_db", ...}.
    benchmark = models.JSONField(default=dict, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    # Why staff approved although the benchmark did not pass (empty when it passed).
    approval_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name

    @property
    def bundle_ref(self) -> str:
        """What enhancer.bundle.load_bundle takes: a shipped name or a folder path."""
        if self.source == self.Source.SHIPPED:
            return self.folder
        return str(models_dir() / self.folder)

    @property
    def spec(self):
        """The config typed and checked (enhancer.model_config.ModelConfig; numpy only, no torch).
        Every way a config gets here (shipped, trained, uploaded) has passed the same check."""
        from enhancer.model_config import ModelConfig

        return ModelConfig.from_dict(self.config, complete=False)

    @property
    def pixel_nm(self) -> float | None:
        """The fine (output) pixel in nm."""
        return self.spec.pixel_nm

    @property
    def scale(self) -> int:
        return self.spec.scale or 1

    @property
    def scan_step_nm(self) -> float | None:
        """The input pixel this model expects: the fine pixel times the scale."""
        return self.pixel_nm * self.scale if self.pixel_nm else None

    @property
    def probe_fwhm_nm(self) -> float | None:
        degradation = self.spec.degradation
        return degradation.probe_fwhm_nm if degradation else None

    @property
    def made_for(self) -> str:
        """What the model was made for, in words: the enhance form tells models apart by it
        (protocol-a and protocol-c share step and probe; their dose differs)."""
        spec = self.spec
        c = spec.conditions
        if c:
            span = lambda pair: "–".join(f"{v:g}" for v in pair)  # noqa: E731
            return (f"any probe of {span(c.probe_fwhm_px)} output pixels, scale {span(c.scale)}, "
                    f"{span(c.counts)} counts at the peak (told the step, probe and dose)")
        parts = []
        step, pixel, scale = self.scan_step_nm, self.pixel_nm, self.scale
        if step:
            parts.append(f"sharpens {step:g} nm scans on their own grid" if scale == 1 else
                         f"takes {step:g} nm scans to a {pixel:g} nm grid (× {scale})")
        if self.probe_fwhm_nm:
            parts.append(f"{self.probe_fwhm_nm:g} nm probe")
        counts = spec.degradation.counts if spec.degradation else None
        if counts:
            parts.append(f"{'low dose: ' if counts < 200 else ''}about {counts:g} counts at the "
                         "brightest pixel")
        return "; ".join(parts)

    @property
    def elements(self):
        elements = self.spec.elements
        return elements if elements == "any" else list(elements)
