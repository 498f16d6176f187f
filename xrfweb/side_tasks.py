"""Side computations kept as JSON on a row: a job's validation against a fine scan
(Job.validation) and a dataset's blind probe estimate (Dataset.probe_estimate).

Unlike a Job they have no status column, heartbeat or worker column, so a worker that died
mid-way would leave them "running" for ever and their pages polling for ever. This module gives
both the same safety, in one place:

- asked(): the JSON a request stores, {"status": "running", "asked": when, ...};
- run(): the task takes it (records "worker" and "started"), computes, and stores the outcome
  only if the row still holds that same request (not reaped, not asked again meanwhile); past
  XRFWEB_SIDE_TASK_TIMEOUT_S it stops itself (Celery's soft time limit);
- reap_stale(): one still running XRFWEB_SIDE_TASK_TIMEOUT_S after it was asked or taken is
  failed, with the reason in words (run whenever a page, its poll or the API reads them);
- fail_of_dead_worker(): a worker starting under a name fails what its previous life was running.

A failed one says why in "error" (the pages and the API show it); the user starts it again.
"""
import logging
from datetime import datetime, timedelta
from typing import NamedTuple

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

log = logging.getLogger(__name__)
RUNNING = "running"
BOOKKEEPING = ("status", "asked", "worker", "started")
# The tasks' own limits (read once, when the worker imports them): past the soft one the task
# records the failure itself; the hard one kills it.
SOFT_LIMIT_S = settings.XRFWEB_SIDE_TASK_TIMEOUT_S
HARD_LIMIT_S = SOFT_LIMIT_S + 60


class Kind(NamedTuple):
    model: type
    field: str
    noun: str  # "the validation failed unexpectedly"
    doing: str  # "the worker stopped while validating against the fine scan"


def kinds() -> dict[str, Kind]:
    from xrfweb.jobs.models import Job
    from xrfweb.projects.models import Dataset

    return {"validation": Kind(Job, "validation", "validation", "validating against the fine scan"),
            "probe_estimate": Kind(Dataset, "probe_estimate", "estimate", "estimating the probe")}


def asked(**extra) -> dict:
    """The JSON of a side computation just asked for (the caller stores it under its row lock)."""
    return {"status": RUNNING, "asked": timezone.now().isoformat(), **extra}


def is_running(value) -> bool:
    return (value or {}).get("status") == RUNNING


def limit_words() -> str:
    s = settings.XRFWEB_SIDE_TASK_TIMEOUT_S
    return f"{s // 60} minutes" if s % 60 == 0 else f"{s} s"


def _failed(value: dict, error: str) -> dict:
    """What the request carried (e.g. the fine scan's id) and who ran it, with the reason."""
    return {**value, "status": "failed", "error": error}


def _replace(kind: Kind, row_id: int, expected: dict | None, new: dict) -> bool:
    """Write new if the row still holds expected's request (same "asked"), under the row lock."""
    with transaction.atomic():
        row = kind.model.objects.select_for_update().filter(id=row_id).first()
        current = getattr(row, kind.field) if row else None
        if not is_running(current) or current.get("asked") != (expected or {}).get("asked"):
            return False
        kind.model.objects.filter(id=row_id).update(**{kind.field: new})
    return True


def run(field: str, row_id: int, worker: str, compute) -> None:
    """The task's body: take the row's running request for this worker, compute(row, request)
    -> the outcome JSON, store it. A finished, reaped or deleted one is left alone (a second
    delivery); a redelivery after the worker died takes it again."""
    close_old_connections()
    kind = kinds()[field]
    with transaction.atomic():
        row = kind.model.objects.select_for_update().filter(id=row_id).first()
        request = getattr(row, kind.field) if row else None
        if not is_running(request):
            return
        request = {**request, "worker": (worker or "")[:200], "started": timezone.now().isoformat()}
        kind.model.objects.filter(id=row_id).update(**{kind.field: request})
    carried = {k: v for k, v in request.items() if k not in BOOKKEEPING}
    try:
        outcome = compute(row, request)
    except SoftTimeLimitExceeded:
        outcome = _failed(carried, f"the {kind.noun} ran past its {limit_words()} limit "
                                   "(XRFWEB_SIDE_TASK_TIMEOUT_S); start it again")
    except Exception:
        log.exception("%s of %s %s failed", kind.field, kind.model.__name__, row_id)
        outcome = _failed(carried, f"the {kind.noun} failed unexpectedly (see the worker's log)")
    _replace(kind, row_id, request, outcome)


def _since(value: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(value.get("started") or value.get("asked"))
    except (TypeError, ValueError):
        return None  # from before these were recorded: as old as can be


def reap_stale() -> int:
    """Fail every side computation still running XRFWEB_SIDE_TASK_TIMEOUT_S after it was asked
    or taken by a worker (its task stops itself at that limit, so its worker is gone, or none
    ever took it). Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.XRFWEB_SIDE_TASK_TIMEOUT_S)
    failed = 0
    for kind in kinds().values():
        running = kind.model.objects.filter(**{f"{kind.field}__status": RUNNING})
        for row_id, value in running.values_list("id", kind.field):
            since = _since(value)
            if since is not None and since >= cutoff:
                continue
            if value.get("worker"):
                error = (f"the worker stopped while {kind.doing} (no outcome {limit_words()} "
                         "after it started); start it again")
            else:
                error = (f"no worker took up the {kind.noun} within {limit_words()} (are the "
                         "workers running?); start it again")
            failed += _replace(kind, row_id, value, _failed(value, error))
    return failed


def fail_of_dead_worker(hostname: str) -> int:
    """A worker starting up under a name runs nothing yet: what is marked running under that
    name died with its previous life (SIGKILL, power cut)."""
    failed = 0
    for kind in kinds().values():
        running = kind.model.objects.filter(**{f"{kind.field}__status": RUNNING,
                                               f"{kind.field}__worker": hostname})
        for row_id, value in running.values_list("id", kind.field):
            error = f"the worker stopped while {kind.doing} (it restarted); start it again"
            failed += _replace(kind, row_id, value, _failed(value, error))
    return failed
