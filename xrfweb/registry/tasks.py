"""The approval benchmark as a Celery task (gpu queue): a thin wrapper over approval.run_benchmark."""
from celery import shared_task

from xrfweb.registry import approval


@shared_task(name="registry.benchmark_model", soft_time_limit=3600, time_limit=4200)
def benchmark_model(model_id: int) -> None:
    approval.run_benchmark(model_id)
