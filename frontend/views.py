"""The React app's page: Django serves the Vite build (frontend/dist) at /app/ and below.

The page is dist/index.html as built (its assets are under /static/, served from
``STATICFILES_DIRS``), with a small JSON block naming the signed-in user and their roles so the
header can show them before the first API call. Everything else comes from the REST API.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.html import json_script
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from bcservice.roles import user_roles

DIST_DIR = Path(settings.BASE_DIR) / "frontend" / "dist"
INDEX_NAME = "index.html"
BOOTSTRAP_ID = "bc-bootstrap"
# The current-user endpoint of the API, when the server has one (the app falls back to the
# user embedded in the page; probing a missing URL would log a 404 in the browser console).
ME_PATH = "/api/v1/me/"
# Endpoints that arrive with other parts of the service: the page says which ones this server
# has, so the app shows "not available" without asking (each miss would be a console error).
OPTIONAL_ENDPOINTS = {
    "me": ME_PATH,
    "history": "/api/v1/resources/1/history/",
    "collect": "/api/v1/resources/1/collect/",
    "prechecks": "/api/v1/requests/1/prechecks/",
    "evidence": "/api/v1/requests/1/evidence/",
    "executions": "/api/v1/executions/1/",
    "reports": "/api/v1/reports/readiness/",
}

# Where the OIDC backend leaves the reason a single sign-on was refused (bcservice.auth.session).
SSO_ERROR_SESSION_KEY = "bc_sso_error"

_cache: dict[str, tuple[float, str]] = {}


def built_index(dist_dir: Path = DIST_DIR) -> str | None:
    """The built index.html, re-read only when the file changes; None when not built."""
    path = dist_dir / INDEX_NAME
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    cached = _cache.get(str(path))
    if cached is None or cached[0] != mtime:
        cached = (mtime, path.read_text(encoding="utf-8"))
        _cache[str(path)] = cached
    return cached[1]


def api_has(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def bootstrap_data(request: HttpRequest) -> dict:
    user = request.user
    return {
        "me_url": ME_PATH if api_has(ME_PATH) else None,
        "endpoints": {name: api_has(path) for name, path in OPTIONAL_ENDPOINTS.items()},
        "login_url": str(settings.LOGIN_URL),
        "logout_url": reverse("app-logout"),
        "user": {
            "username": user.get_username(),
            "display_name": user.get_full_name() or user.get_username(),
            "roles": sorted(user_roles(user)),
        },
    }


@login_required
@never_cache
@ensure_csrf_cookie
def index(request: HttpRequest, path: str = "") -> HttpResponse:
    """Every /app/ URL gets the same page; the React router picks the screen."""
    html = built_index()
    if html is None:
        return render(request, "frontend/not_built.html", status=503)
    script = json_script(bootstrap_data(request), BOOTSTRAP_ID)
    return HttpResponse(html.replace("</head>", f"{script}</head>", 1))


def sso_login_url() -> str | None:
    """The identity provider's login (mozilla-django-oidc), when single sign-on is configured."""
    if not getattr(settings, "OIDC_RP_CLIENT_ID", ""):
        return None
    try:
        return reverse("oidc_authentication_init")
    except NoReverseMatch:
        return None


class LoginView(auth_views.LoginView):
    """A password login for every active user (the admin's admits staff only), offering single
    sign-on when it is configured and saying why an SSO attempt was refused."""

    template_name = "frontend/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        sso_error = self.request.session.pop(SSO_ERROR_SESSION_KEY, "")
        if not sso_error and self.request.GET.get("sso") == "failed":
            sso_error = "Single sign-on did not complete. Try again or use a local account."
        context.update(sso_url=sso_login_url(), sso_error=sso_error)
        return context
