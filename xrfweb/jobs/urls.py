from django.urls import path

from xrfweb.jobs import views

urlpatterns = [
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/status.json", views.job_list_json, name="job-list-json"),
    path("jobs/<int:job_id>/status.json", views.job_status_json, name="job-status-json"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:job_id>/validate/", views.job_validate, name="job-validate"),
    path("jobs/<int:job_id>/result.<str:fmt>", views.job_result, name="job-result"),
    path("datasets/<int:dataset_id>/enhance/", views.dataset_enhance, name="dataset-enhance"),
]
