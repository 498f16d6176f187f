from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from xrfweb.accounts.views import obtain_token
from xrfweb.api import views

v1 = [
    path("auth/token/", obtain_token, name="api-token"),
    path("projects/", views.projects, name="api-projects"),
    path("projects/<int:project_id>/", views.project_detail, name="api-project"),
    path("projects/<int:project_id>/datasets/", views.project_datasets,
         name="api-project-datasets"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="api-dataset"),
    path("datasets/<int:dataset_id>/probe/", views.dataset_probe, name="api-dataset-probe"),
    path("datasets/<int:dataset_id>/probe-estimate/", views.dataset_probe_estimate,
         name="api-dataset-probe-estimate"),
    path("models/", views.models, name="api-models"),
    path("models/train/", views.model_train, name="api-model-train"),
    path("models/upload/", views.model_upload, name="api-model-upload"),
    path("models/<int:model_id>/", views.model_detail, name="api-model"),
    path("models/<int:model_id>/status/", views.model_status, name="api-model-status"),
    path("jobs/", views.jobs, name="api-jobs"),
    path("jobs/<int:job_id>/", views.job_detail, name="api-job"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="api-job-cancel"),
    path("jobs/<int:job_id>/validate/", views.job_validate, name="api-job-validate"),
    path("jobs/<int:job_id>/result/", views.job_result, name="api-job-result"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP runs no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
