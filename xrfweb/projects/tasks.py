"""parse_dataset: read an upload in a child process (enhancer.formats.read_map_safely) and record
what it holds, or why it was refused. Runs on the default queue."""
import logging

from celery import shared_task
from django.db import close_old_connections

from enhancer import UserError
from enhancer.physics import estimate_counts
from xrfweb import side_tasks
from xrfweb.projects.models import Dataset

log = logging.getLogger(__name__)
S = Dataset.Status


def describe(xrfmap) -> dict:
    """The Dataset fields that record what a parsed map holds."""
    return dict(
        source_format=xrfmap.source_format,
        elements=list(xrfmap.elements),
        shape=list(xrfmap.shape),
        pixel_size_nm=list(xrfmap.pixel_size_nm) if xrfmap.pixel_size_nm else None,
        scalers=sorted(xrfmap.scalers),
        units=(xrfmap.units or "")[:40],
        counts_estimate=estimate_counts(xrfmap.data),
    )


@shared_task(name="projects.parse_dataset", bind=True)
def parse_dataset(self, dataset_id: int) -> None:
    close_old_connections()
    # Claim: a second delivery of the same message finds it parsing or done and does nothing.
    # Except the broker's redelivery after the worker died mid-parse (acks_late): otherwise the
    # upload stays 'parsing' for ever. Reading only writes this row, so reading again is safe.
    claimable = [S.UPLOADED]
    if (self.request.delivery_info or {}).get("redelivered"):
        claimable.append(S.PARSING)
    if not Dataset.objects.filter(id=dataset_id, status__in=claimable).update(status=S.PARSING):
        return
    dataset = Dataset.objects.get(id=dataset_id)
    try:
        xrfmap = dataset.read_map()
    except UserError as e:
        # The reader names the file it was given: our generated name. Say the user's instead.
        message = dataset.in_users_words(str(e))
        Dataset.objects.filter(id=dataset_id).update(status=S.REJECTED, error=message)
        return
    except Exception:
        log.exception("dataset %s could not be parsed", dataset_id)
        Dataset.objects.filter(id=dataset_id).update(
            status=S.REJECTED, error="The file could not be read as an XRF map."
        )
        return
    Dataset.objects.filter(id=dataset_id).update(status=S.READY, error="", **describe(xrfmap))


@shared_task(name="projects.estimate_probe", bind=True, soft_time_limit=side_tasks.SOFT_LIMIT_S,
             time_limit=side_tasks.HARD_LIMIT_S)
def estimate_probe(self, dataset_id: int) -> None:
    """The probe's FWHM from the map itself (the CLI's `probe`), on the row through
    xrfweb.side_tasks.run (taken, timed out, failed with its worker like a validation)."""
    side_tasks.run("probe_estimate", dataset_id, self.request.hostname, blind_estimate)


def blind_estimate(dataset: Dataset, asked: dict) -> dict:
    """enhancer.probe.blind on the upload: its result with its uncertainty, or why the map cannot
    show it, in the user's words."""
    from enhancer.probe import blind

    try:
        step = dataset.scan_step_nm
        if step is None:
            raise UserError("the map's scan step is unknown: state it first")
        return {"status": "done", **blind(dataset.read_map().data, step)}
    except UserError as e:
        return {"status": "failed", "error": dataset.in_users_words(str(e))}
