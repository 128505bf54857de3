from django.urls import path

from connectors.api.views import CollectNowView

urlpatterns = [
    path("resources/<int:pk>/collect/", CollectNowView.as_view(), name="resource-collect"),
]
