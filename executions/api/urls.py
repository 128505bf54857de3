from django.urls import path
from rest_framework.routers import SimpleRouter

from executions.api.export_views import ExecutionExportView
from executions.api.reports import EvidenceView, ReadinessReportView
from executions.api.views import ExecutionViewSet, PrecheckView, StartView

router = SimpleRouter()
router.register("executions", ExecutionViewSet, basename="execution")

urlpatterns = [
    path("requests/<int:pk>/start/", StartView.as_view(), name="request-start"),
    path("requests/<int:pk>/prechecks/", PrecheckView.as_view(), name="request-prechecks"),
    path("requests/<int:pk>/evidence/", EvidenceView.as_view(), name="request-evidence"),
    path("reports/readiness/", ReadinessReportView.as_view(), name="report-readiness"),
    # Before the router, so that "export" is never taken for an execution id.
    path("executions/export/", ExecutionExportView.as_view(), name="executions-export"),
    *router.urls,
]
