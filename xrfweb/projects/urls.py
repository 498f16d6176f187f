from django.urls import path

from xrfweb.projects import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:project_id>/", views.project_detail, name="project"),
    path("projects/<int:project_id>/datasets.json", views.project_datasets_json,
         name="project-datasets-json"),
    path("projects/<int:project_id>/collaborators/", views.project_collaborators,
         name="project-collaborators"),
    path("projects/<int:project_id>/upload/", views.project_upload, name="project-upload"),
    path("datasets/<int:dataset_id>/file", views.dataset_file, name="dataset-file"),
    path("datasets/<int:dataset_id>/delete/", views.dataset_delete, name="dataset-delete"),
    path("datasets/<int:dataset_id>/probe/", views.dataset_probe, name="dataset-probe"),
    path("datasets/<int:dataset_id>/measured-probe/", views.dataset_measured_probe,
         name="dataset-measured-probe"),
    path("datasets/<int:dataset_id>/probe.json", views.dataset_probe_json, name="dataset-probe-json"),
]
