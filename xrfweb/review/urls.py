"""Review pages: one page per dataset, job and model, and a comparison of models. Other pages
link to them only by these url names. Each page draws from the JSON endpoints beside it."""
from django.urls import path

from xrfweb.review import views

urlpatterns = [
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<int:dataset_id>/maps.json", views.dataset_maps, name="dataset-maps"),
    path("datasets/<int:dataset_id>/region.json", views.dataset_region, name="dataset-region"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/review.json", views.job_review, name="job-review"),
    path("jobs/<int:job_id>/maps.json", views.job_maps, name="job-maps"),
    path("jobs/<int:job_id>/region.json", views.job_region, name="job-region"),
    path("jobs/<int:job_id>/profile.json", views.job_profile, name="job-profile"),
    path("jobs/<int:job_id>/roi.json", views.job_roi, name="job-roi"),
    path("models/<int:model_id>/", views.model_detail, name="model-detail"),
    path("models/<int:model_id>/curves.json", views.model_curves, name="model-curves"),
    path("models/<int:model_id>/example.json", views.model_example, name="model-example"),
    path("models/compare/maps/", views.compare_maps, name="compare-maps"),
    path("models/compare/maps.json", views.compare_json, name="compare-maps-json"),
]
