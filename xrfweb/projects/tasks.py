"""parse_dataset: read an upload in a child process (enhancer.formats.read_map_safely) and record
what it holds, or why it was refused. Runs on the default queue."""
import logging

from celery import shared_task
from django.db import close_old_connections

from enhancer import UserError
from enhancer.physics import estimate_counts
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


@shared_task(name="projects.estimate_probe")
def estimate_probe(dataset_id: int) -> None:
    """The probe's FWHM from the map itself (enhancer.probe.blind, the CLI's `probe`); the result
    with its uncertainty, or why the map cannot show it, on the row."""
    from enhancer.probe import blind

    close_old_connections()
    dataset = Dataset.objects.filter(id=dataset_id).first()
    if dataset is None or (dataset.probe_estimate or {}).get("status") != "running":
        return  # deleted, or a second delivery of a finished one
    try:
        step = dataset.scan_step_nm
        if step is None:
            raise UserError("the map's scan step is unknown: state it first")
        result = {"status": "done", **blind(dataset.read_map().data, step)}
    except UserError as e:
        result = {"status": "failed", "error": dataset.in_users_words(str(e))}
    except Exception:
        log.exception("probe estimate of dataset %s failed", dataset_id)
        result = {"status": "failed", "error": "the estimate failed unexpectedly (see the worker's log)"}
    Dataset.objects.filter(id=dataset_id).update(probe_estimate=result)
