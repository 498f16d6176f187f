from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from xrfweb import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    # Pages that are not ours (admin, API docs) name no icon: browsers then ask for this one.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True),
         name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/", include("xrfweb.accounts.urls")),
    path("api/", include("xrfweb.api.urls")),
    # Review pages (/datasets/<id>/, /jobs/<id>/, /models/<id>/) belong to the review app.
    path("", include("xrfweb.review.urls")),
    path("", include("xrfweb.projects.urls")),
    path("", include("xrfweb.registry.urls")),
    path("", include("xrfweb.jobs.urls")),
]
