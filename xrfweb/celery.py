"""The Celery app: `celery -A xrfweb worker -Q gpu,default` starts a worker.

Configuration is the CELERY_* block of xrfweb/settings.py. Nothing here touches torch or CUDA:
the prefork parent must never initialise CUDA, so the science is imported in each pool child as
it starts (import_the_science).
"""
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xrfweb.settings")

app = Celery("xrfweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from xrfweb import workers  # noqa: E402,F401  (connects the presence signals /healthz reads)


@worker_process_init.connect
def import_the_science(**_):
    """Import enhancer (torch, scipy, h5py) when a pool child starts, before it takes a job.

    Imported inside a job instead, a soft time limit could land mid-import: the half-initialised
    module stays in sys.modules and every later job in that child fails on it (seen in CI: a 2 s
    limit inside `from scipy import ndimage` on a slow machine). Still in the child, so the
    prefork parent never touches torch; CELERY_WORKER_PROC_ALIVE_TIMEOUT allows for the time.
    """
    import importlib

    for name in ("baselines", "bundle", "degrade", "enhance", "formats", "metrics", "phantoms",
                 "roi", "train", "trust", "xrfmap"):
        importlib.import_module(f"enhancer.{name}")
