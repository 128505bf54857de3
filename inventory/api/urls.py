from django.urls import path
from rest_framework.routers import SimpleRouter

from inventory.api.views import GroupViewSet, ResourceViewSet, SiteViewSet, StatusSummaryView

router = SimpleRouter()
router.register("sites", SiteViewSet, basename="site")
router.register("resources", ResourceViewSet, basename="resource")
router.register("groups", GroupViewSet, basename="group")

urlpatterns = [
    path("status/summary/", StatusSummaryView.as_view(), name="status-summary"),
    *router.urls,
]
