from pathlib import Path

from django.conf import settings
from django.db import models

from xrfweb.paths import probes_dir, uploads_dir


class Project(models.Model):
    """One beamtime or proposal: its owner, collaborators and uploaded maps."""

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_projects"
    )
    collaborators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="shared_projects"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name

    @property
    def element_maps(self) -> int:
        """How many element maps its uploads hold (one upload often holds several)."""
        return sum(len(d.elements or []) for d in self.datasets.all())


class Dataset(models.Model):
    """An uploaded map file. The row says whether it was understood (ready) or why not (rejected)."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded"
        PARSING = "parsing"
        READY = "ready"
        REJECTED = "rejected"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    original_name = models.CharField(max_length=255)  # shown to people, never used as a path
    stored_name = models.CharField(max_length=64, unique=True)  # generated, under DATA_DIR/uploads
    kind = models.CharField(max_length=8)  # what the content is: hdf5, tiff, zip, npy
    size_bytes = models.BigIntegerField()
    # The map's physics (enhancer.physics.Physics): None is unknown, shown as unknown, never assumed.
    pixel_nm_given = models.FloatField(null=True, blank=True)  # the step stated by a user (along x)
    pixel_nm_given_y = models.FloatField(null=True, blank=True)  # along y, when stated apart from x
    probe_fwhm_x_nm = models.FloatField(null=True, blank=True)  # along x (columns)
    probe_fwhm_y_nm = models.FloatField(null=True, blank=True)  # along y (rows)
    counts_estimate = models.FloatField(null=True, blank=True)  # peak counts, from the data when parsed
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED)
    error = models.TextField(blank=True)
    # What parsing found (enhancer.xrfmap.XRFMap):
    source_format = models.CharField(max_length=20, blank=True)
    elements = models.JSONField(default=list, blank=True)
    shape = models.JSONField(null=True, blank=True)  # [elements, rows, cols]
    pixel_size_nm = models.JSONField(null=True, blank=True)  # [y, x]
    scalers = models.JSONField(default=list, blank=True)
    units = models.CharField(max_length=40, blank=True)
    # The blind probe estimate (enhancer.probe.blind), asked for on the dataset page: null until
    # asked; then {"status": "running"|"done"|"failed", "error": words, **blind()'s JSON}.
    probe_estimate = models.JSONField(null=True, blank=True)
    # A measured probe (knife-edge or ptychographic) staff attached (xrfweb/projects/probes.py):
    # null, or {"name": the uploader's file name, "file": our stored name under DATA_DIR/probes,
    # "pixel_nm", "fwhm_nm": [x, y], "dataset_path": an HDF5 dataset or null, "size_bytes",
    # "attached_by": the user id whose storage quota the file counts towards}.
    # While attached, probe_fwhm_x/y_nm are its FWHM and jobs use it as the PSF.
    measured_probe = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.original_name

    @property
    def path(self):
        return uploads_dir() / self.stored_name

    @property
    def measured_probe_path(self):
        """The attached probe's stored file, or None."""
        return probes_dir() / self.measured_probe["file"] if self.measured_probe else None

    def read_map(self):
        """The upload's XRFMap, read in a child process (enhancer.formats.read_map_safely).
        A single TIFF or NPY map is named after its file: the uploader's name, not ours."""
        from enhancer.formats import read_map_safely

        xrfmap = read_map_safely(self.path, pixel_nm=self.pixel_nm_given)
        # The upload's path comes from this row only, never from what the reader child said: a
        # result written in the input's layout copies this file.
        xrfmap.source["path"] = str(self.path)
        ours = Path(self.stored_name).stem
        xrfmap.elements = [self._element_from_name() if e == ours else e for e in xrfmap.elements]
        return xrfmap

    def in_users_words(self, message: str) -> str:
        """A reader's message about the stored file, naming the uploader's file instead."""
        return message.replace(self.stored_name, self.original_name).replace(
            Path(self.stored_name).stem, self._element_from_name())

    def _element_from_name(self) -> str:
        from enhancer.formats.rules import element_from_filename

        return element_from_filename(Path(self.original_name).stem) or "map"

    @property
    def scan_step_nm(self) -> tuple[float, float] | None:
        """The scan step (x, y): what a user stated, else what the file says, else None."""
        if self.pixel_nm_given:
            return (self.pixel_nm_given, self.pixel_nm_given_y or self.pixel_nm_given)
        if self.pixel_size_nm:
            y, x = self.pixel_size_nm  # the file's [y, x]
            return (float(x), float(y))
        return None

    @property
    def pixel_nm(self) -> float | None:
        """The scan step as one number (the mean of x and y), or None when unknown."""
        step = self.scan_step_nm
        return (step[0] + step[1]) / 2 if step else None

    @property
    def probe_fwhm_nm(self) -> tuple[float, float] | None:
        if self.probe_fwhm_x_nm is None:
            return None
        return (self.probe_fwhm_x_nm, self.probe_fwhm_y_nm or self.probe_fwhm_x_nm)

    @property
    def physics(self):
        """What enhancer.fit judges models by: step, probe and the estimated dose."""
        from enhancer.physics import Physics

        return Physics(self.scan_step_nm, self.probe_fwhm_nm, self.counts_estimate,
                       counts_estimated=self.counts_estimate is not None)
