"""Celery tasks for jobs: thin wrappers that hand the Job row to runner.run.

Both go to the gpu queue (settings.CELERY_TASK_ROUTES). They import the science lazily
(in work.py), so loading this module never imports torch or touches CUDA.
"""
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from xrfweb import side_tasks
from xrfweb.jobs import runner, work

# Soft limit: the task gets SoftTimeLimitExceeded and records a failure; hard limit: killed.
SOFT_LIMIT_S = settings.XRFWEB_JOB_MAX_HOURS * 3600
HARD_LIMIT_S = SOFT_LIMIT_S + 600


@shared_task(name="jobs.enhance_dataset", bind=True, soft_time_limit=SOFT_LIMIT_S,
             time_limit=HARD_LIMIT_S)
def enhance_dataset(self, job_id: int) -> None:
    runner.run(job_id, self.request.hostname or "", work.enhance)


@shared_task(name="jobs.train_model", bind=True, soft_time_limit=SOFT_LIMIT_S,
             time_limit=HARD_LIMIT_S)
def train_model(self, job_id: int) -> None:
    runner.run(job_id, self.request.hostname or "", work.train)


@worker_ready.connect
def fail_jobs_left_running(sender, **kwargs) -> None:
    """A worker that just started runs nothing yet: jobs, validations and probe estimates still
    marked running under its name died with its previous life (SIGKILL, power cut)."""
    runner.fail_jobs_of_dead_worker(sender.hostname)
    side_tasks.fail_of_dead_worker(sender.hostname)
    runner.reap_stale_jobs()  # and stale side computations (side_tasks.reap_stale)


@shared_task(name="jobs.validate_job", bind=True, soft_time_limit=side_tasks.SOFT_LIMIT_S,
             time_limit=side_tasks.HARD_LIMIT_S)
def validate_job(self, job_id: int) -> None:
    """Validate a job's result against the fine scan its row names; the outcome goes on the row."""
    side_tasks.run("validation", job_id, self.request.hostname, work.validate)
