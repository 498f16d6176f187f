from django.contrib import admin
from django.urls import include, path

from xrfweb import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("xrfweb.accounts.urls")),
    path("api/", include("xrfweb.api.urls")),
    # Review pages (/datasets/<id>/, /jobs/<id>/, /models/<id>/) belong to the review app.
    path("", include("xrfweb.review.urls")),
    path("", include("xrfweb.projects.urls")),
    path("", include("xrfweb.registry.urls")),
    path("", include("xrfweb.jobs.urls")),
]
