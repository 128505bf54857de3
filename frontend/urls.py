"""/app/: the React app (every path below it is one of its screens), plus login and logout
pages that accept any active user (the Django admin's login admits staff only)."""

from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from frontend import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="app-login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="/app/"), name="app-logout"),
    path("", views.index, name="app"),
    re_path(r"^(?P<path>.+)$", views.index, name="app-path"),
]
