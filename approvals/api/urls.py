"""Routes of the approvals API, mounted under /api/v1/ by bcservice/urls.py."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from approvals.api.export_views import RequestExportView
from approvals.api.views import BreakGlassViewSet, PolicyViewSet, RequestViewSet

router = SimpleRouter()
router.register("requests", RequestViewSet, basename="approval-request")
router.register("policies", PolicyViewSet, basename="approval-policy")
router.register("breakglass", BreakGlassViewSet, basename="breakglass")

urlpatterns = [
    # Before the router, so that "export" is never taken for a request id.
    path("requests/export/", RequestExportView.as_view(), name="requests-export"),
    *router.urls,
]
