"""Sending work to the workers, and sending again what Redis lost.

The database rows are the truth; a Celery message only says "look at row N", and every task
claims its row first, so a second message for the same row does nothing. Redis keeps its queues
in memory: a restart loses them, and while it is down nothing can be sent. So a request never
fails because Redis is down (the row waits), and whenever a worker finds that Redis lost its
data or was out of reach, it sends every waiting row again (xrfweb.workers calls resend_waiting).
"""
import logging

from django.db import transaction
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)


def send_after_commit(task, object_id: int) -> None:
    """task.delay(object_id) once the current transaction commits (the worker must find the
    row; a rolled-back request sends nothing). Redis down: logged, the row stays waiting."""
    def send():
        try:
            task.delay(object_id)
        except OperationalError as e:
            log.warning("Redis is unreachable (%s): %s %s waits until a worker sends it again",
                        e, task.name, object_id)

    transaction.on_commit(send)


def resend_waiting() -> int:
    """Send a message for every queued job, upload not yet parsed, validation and probe estimate
    still running (their tasks check the row first); returns how many."""
    from xrfweb.jobs.models import Job
    from xrfweb.jobs.tasks import enhance_dataset, train_model, validate_job
    from xrfweb.projects.models import Dataset
    from xrfweb.projects.tasks import estimate_probe, parse_dataset

    sent = 0
    for job_id, kind in Job.objects.filter(status=Job.Status.QUEUED).order_by("id").values_list(
            "id", "kind"):
        (enhance_dataset if kind == Job.Kind.ENHANCE else train_model).delay(job_id)
        sent += 1
    for dataset_id in Dataset.objects.filter(status=Dataset.Status.UPLOADED).order_by(
            "id").values_list("id", flat=True):
        parse_dataset.delay(dataset_id)
        sent += 1
    for job_id in Job.objects.filter(validation__status="running").values_list("id", flat=True):
        validate_job.delay(job_id)
        sent += 1
    for dataset_id in Dataset.objects.filter(probe_estimate__status="running").values_list("id", flat=True):
        estimate_probe.delay(dataset_id)
        sent += 1
    if sent:
        log.info("sent %d waiting jobs and uploads again", sent)
    return sent
