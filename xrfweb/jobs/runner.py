"""Running a Job row from inside a Celery task: claim it, report progress, record the outcome.

The task functions (tasks.py) stay thin; the science is in enhancer/ (work.py calls it).
"""
import logging
import threading
import time
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

import enhancer
from xrfweb.jobs.models import Job

log = logging.getLogger(__name__)
S = Job.Status
REPORT_EVERY_S = 1.0  # progress written to the row at most this often
HEARTBEAT_EVERY_S = 20.0


def claim(job_id: int, worker: str) -> bool:
    """Mark a queued job running. False if it is not queued any more (a second delivery,
    a cancel before start, a reaped job): then the task must do nothing."""
    now = timezone.now()
    return (
        Job.objects.filter(id=job_id, status=S.QUEUED).update(
            status=S.RUNNING, started=now, heartbeat=now, worker=worker[:200],
            message="starting",
        )
        == 1
    )


def finish(job_id: int, status: str, error: str = "", message: str = "") -> None:
    """Record the end of a running job (only a running one, so a reaped job stays reaped)."""
    fields = dict(status=status, error=error, finished=timezone.now(), heartbeat=timezone.now())
    if status == S.SUCCEEDED:
        fields["progress"] = 1.0
    fields["message"] = message or {S.SUCCEEDED: "done", S.CANCELLED: "cancelled"}.get(status, "")
    Job.objects.filter(id=job_id, status=S.RUNNING).update(**fields)


class Reporter:
    """The progress and cancel callbacks handed to enhancer, bound to one job row.

    Writes are throttled to about one a second; a thread keeps the heartbeat fresh when the
    science is quiet for a long stretch (one big tile on a CPU)."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False
        self._curve_points: list[dict] = []
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)

    def __enter__(self):
        self._beat.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._beat.join(timeout=5)

    def _heartbeat(self):
        try:
            while not self._stop.wait(HEARTBEAT_EVERY_S):
                Job.objects.filter(id=self.job_id, status=S.RUNNING).update(
                    heartbeat=timezone.now()
                )
        finally:
            connection.close()  # this thread's own connection

    def progress(self, fraction: float, message: str = "", curve: dict | None = None,
                 force: bool = False) -> None:
        now = time.monotonic()
        if curve is not None:  # curve points are rare (one per evaluation): never drop one
            self._curve_points.append(curve)
            force = True
        if not force and now - self._last_write < REPORT_EVERY_S:
            return
        self._last_write = now
        fields = dict(progress=max(0.0, min(1.0, float(fraction))), heartbeat=timezone.now())
        if message:
            fields["message"] = message[:300]
        if self._curve_points:
            job = Job.objects.only("curves").get(id=self.job_id)
            fields["curves"] = job.curves + self._curve_points
            self._curve_points = []
        Job.objects.filter(id=self.job_id, status=S.RUNNING).update(**fields)

    def cancelled(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= REPORT_EVERY_S:
            self._last_cancel_check = now
            self._cancelled = Job.objects.filter(id=self.job_id, cancel_requested=True).exists()
        return self._cancelled


def run(job_id: int, worker: str, work) -> None:
    """Claim the job for this worker (Celery node name), call work(job, reporter), and
    record how it ended, in words."""
    close_old_connections()
    if not claim(job_id, worker):
        log.info("job %s is not queued any more; nothing to do", job_id)
        return
    job = Job.objects.select_related("dataset", "model").get(id=job_id)
    try:
        with Reporter(job_id) as reporter:
            if reporter.cancelled():
                raise enhancer.Cancelled()
            work(job, reporter)
    except enhancer.Cancelled:
        finish(job_id, S.CANCELLED)
    except enhancer.UserError as e:
        finish(job_id, S.FAILED, error=str(e))
    except SoftTimeLimitExceeded:
        finish(job_id, S.FAILED, error=f"Stopped: the job ran past the "
               f"{settings.XRFWEB_JOB_MAX_HOURS}-hour limit.")
    except Exception:
        log.exception("job %s failed", job_id)
        finish(job_id, S.FAILED, error=f"Unexpected error in the worker (job {job_id}); "
               "the administrators can find the details in the worker log.")
    else:
        finish(job_id, S.SUCCEEDED)


def reap_stale_jobs() -> int:
    """Fail running jobs whose worker stopped beating (killed, machine lost).

    Called when a worker starts and whenever job lists are read, so no job stays
    'running' forever. Validations ride along (side_tasks.reap_stale: probe estimates too)."""
    from xrfweb import side_tasks

    side_tasks.reap_stale()
    limit = timezone.now() - timedelta(seconds=settings.XRFWEB_HEARTBEAT_STALE_S)
    return Job.objects.filter(status=S.RUNNING, heartbeat__lt=limit).update(
        status=S.FAILED, finished=timezone.now(),
        error="The worker running this job stopped responding; start the job again.",
    )


def fail_jobs_of_dead_worker(hostname: str) -> int:
    """A worker starting up under a hostname cannot still be running jobs from before."""
    return Job.objects.filter(status=S.RUNNING, worker=hostname).update(
        status=S.FAILED, finished=timezone.now(),
        error="The worker restarted while running this job; start the job again.",
    )
