from django.conf import settings
from django.db import models
from django.utils import timezone

from xrfweb.paths import results_dir


class Job(models.Model):
    """An enhancement or a training run. This row is the truth; the Celery task only executes it."""

    class Kind(models.TextChoices):
        ENHANCE = "enhance"
        TRAIN = "train"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)  # 0..1
    message = models.CharField(max_length=300, blank=True)  # what it is doing now
    error = models.TextField(blank=True)  # why it failed, in words
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    # enhance: the input and its project; train: null
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    dataset = models.ForeignKey(
        "projects.Dataset", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    # enhance: the model used; train: the model produced (set when training succeeds)
    model = models.ForeignKey(
        "registry.EnhancementModel", null=True, blank=True, on_delete=models.PROTECT,
        related_name="jobs",
    )
    params = models.JSONField(default=dict, blank=True)
    curves = models.JSONField(default=list, blank=True)  # train: one dict per progress report
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)  # hostname of the worker running it
    heartbeat = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # enhance: the check against a fine scan (POST .../validate/): null until asked; then
    # {"status": "running"|"done"|"failed", "fine_dataset": id, "error": words, **the report}
    validation = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.id}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def result_dir(self):
        return results_dir() / str(self.id)

    def queue_position(self) -> int | None:
        """1 for the next job a GPU worker takes; None once it has started."""
        if self.status != self.Status.QUEUED:
            return None
        ahead = Job.objects.filter(status=self.Status.QUEUED, id__lt=self.id).count()
        return ahead + 1

    def duration_s(self) -> float | None:
        if not self.started:
            return None
        return ((self.finished or timezone.now()) - self.started).total_seconds()
