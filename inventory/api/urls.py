from rest_framework.routers import SimpleRouter

from inventory.api.views import GroupViewSet, ResourceViewSet, SiteViewSet

router = SimpleRouter()
router.register("sites", SiteViewSet, basename="site")
router.register("resources", ResourceViewSet, basename="resource")
router.register("groups", GroupViewSet, basename="group")

urlpatterns = router.urls
