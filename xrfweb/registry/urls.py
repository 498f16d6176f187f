from django.urls import path

from xrfweb.registry import views

urlpatterns = [
    path("models/", views.model_list, name="model-list"),
    path("models/train/", views.model_train, name="model-train"),
    path("models/upload/", views.model_upload, name="model-upload"),
    path("models/compare/", views.model_compare, name="model-compare"),
    path("models/training/<int:job_id>/", views.model_training, name="model-training"),
    path("models/<int:model_id>/status/", views.model_status, name="model-status"),
    path("models/<int:model_id>/benchmark/", views.model_benchmark, name="model-benchmark"),
    path("models/<int:model_id>/benchmark.json", views.model_benchmark_json,
         name="model-benchmark-json"),
]
