"""Routes of the approvals API, mounted under /api/v1/ by bcservice/urls.py."""

from rest_framework.routers import SimpleRouter

from approvals.api.views import BreakGlassViewSet, PolicyViewSet, RequestViewSet

router = SimpleRouter()
router.register("requests", RequestViewSet, basename="approval-request")
router.register("policies", PolicyViewSet, basename="approval-policy")
router.register("breakglass", BreakGlassViewSet, basename="breakglass")

urlpatterns = router.urls
