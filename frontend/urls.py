"""Serves the built React app at /app/ (placeholder until the app lands)."""

from django.urls import path

from frontend import views

urlpatterns = [path("", views.index, name="app")]
