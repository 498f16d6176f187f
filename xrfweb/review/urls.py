"""Review pages: one page per dataset, job and model. The review app's owner extends these;
other pages link to them only by these url names."""
from django.urls import path

from xrfweb.review import views

urlpatterns = [
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset-detail"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("models/<int:model_id>/", views.model_detail, name="model-detail"),
]
