"""Routes of the audit API, mounted under /api/v1/ by bcservice/urls.py."""

from django.urls import path

from audit.api import views

urlpatterns = [
    path("audit/events/", views.EventListView.as_view(), name="audit-events"),
    path("audit/verify/", views.VerifyView.as_view(), name="audit-verify"),
    path("audit/checkpoints/", views.CheckpointListView.as_view(), name="audit-checkpoints"),
    path("audit/public-keys/", views.PublicKeysView.as_view(), name="audit-public-keys"),
    path("audit/config-history/", views.HistoryIndexView.as_view(), name="audit-config-history"),
    path(
        "audit/config-history/<slug:name>/",
        views.HistoryListView.as_view(),
        name="audit-config-history-detail",
    ),
]
