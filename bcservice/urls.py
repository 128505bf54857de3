"""URL map: admin, health probes, OIDC login, the REST API (each app's api/ package), schema and
docs."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from bcservice import health, metrics
from bcservice.api import me

api_v1 = [
    path("", include("inventory.api.urls")),
    path("", include("connectors.api.urls")),
    path("", include("approvals.api.urls")),
    path("", include("executions.api.urls")),
    path("", include("audit.api.urls")),
    path("me/", me.MeView.as_view(), name="me"),
    path("auth/options/", me.AuthOptionsView.as_view(), name="auth-options"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    # Single sign-on (answers 404 while BC_OIDC_* are not set): authenticate/, callback/, logout/.
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("app/", include("frontend.urls")),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
