"""The Celery app: `celery -A xrfweb worker -Q gpu,default` starts a worker.

Configuration is the CELERY_* block of xrfweb/settings.py. Nothing here touches torch or CUDA:
the prefork parent must never initialise CUDA, so tasks import the science lazily, in the child.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xrfweb.settings")

app = Celery("xrfweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from xrfweb import workers  # noqa: E402,F401  (connects the presence signals /healthz reads)
