"""The React app's page at /app/: login required, the built index served, CSRF cookie set."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from frontend import views

DIST = Path(settings.BASE_DIR) / "frontend" / "dist"
needs_build = pytest.mark.skipif(
    not (DIST / "index.html").exists(),
    reason="frontend/dist is missing: build the app first (cd frontend && npm ci && npm run build)",
)


@pytest.fixture
def operator_client(make_user) -> Client:
    client = Client()
    client.force_login(make_user("operator", "approver_it", username="olive"))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/app/", "/app/requests/12", "/app/resources/3?state=red"])
def test_anonymous_is_sent_to_the_login_page(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    login, _, query = response["Location"].partition("?")
    assert login == settings.LOGIN_URL
    assert query.startswith("next=/app/")


@needs_build
def test_serves_the_built_index_with_static_assets(operator_client: Client) -> None:
    response = operator_client.get("/app/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert '<div id="root"></div>' in html
    scripts = re.findall(r'src="(/static/assets/[^"]+\.js)"', html)
    assert scripts, "the page must load its bundle from /static/"
    for asset in scripts + re.findall(r'href="(/static/assets/[^"]+\.css)"', html):
        assert (DIST / asset.removeprefix("/static/")).exists(), asset
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@needs_build
def test_client_routes_get_the_same_page(operator_client: Client) -> None:
    root = operator_client.get("/app/").content
    deep = operator_client.get("/app/requests/42")
    assert deep.status_code == 200
    assert deep.content == root


@needs_build
def test_embeds_the_user_and_roles(operator_client: Client) -> None:
    html = operator_client.get("/app/").content.decode()
    match = re.search(r'<script id="bc-bootstrap" type="application/json">(.*?)</script>', html)
    assert match, "bootstrap data missing"
    data = json.loads(match.group(1))
    assert data["user"]["username"] == "olive"
    assert data["user"]["roles"] == ["approver_it", "operator"]
    assert data["login_url"] == settings.LOGIN_URL
    assert data["logout_url"] == "/app/logout/"
    # Only named when the API has it, so the browser never probes a missing URL.
    assert data["me_url"] in (None, "/api/v1/me/")
    assert (data["me_url"] is not None) == views.api_has("/api/v1/me/")
    # Which optional endpoints exist, so the app never probes a missing one.
    assert set(data["endpoints"]) == set(views.OPTIONAL_ENDPOINTS)
    assert data["endpoints"]["history"] is views.api_has("/api/v1/resources/1/history/")


def test_api_has_tells_routes_from_missing_ones() -> None:
    assert views.api_has("/api/v1/resources/")
    assert not views.api_has("/api/v1/no-such-thing/")


@needs_build
def test_bootstrap_data_cannot_break_out_of_its_script(make_user) -> None:
    user = make_user("viewer", username="x")
    user.first_name = "</script><script>alert(1)</script>"
    user.save()
    client = Client()
    client.force_login(user)
    html = client.get("/app/").content.decode()
    assert "<script>alert(1)" not in html


@needs_build
def test_sets_the_csrf_cookie(operator_client: Client) -> None:
    response = operator_client.get("/app/")
    assert settings.CSRF_COOKIE_NAME in response.cookies
    assert response.cookies[settings.CSRF_COOKIE_NAME].value


def test_missing_build_answers_503_with_instructions(
    operator_client: Client, tmp_path, monkeypatch
):
    monkeypatch.setattr(views, "built_index", lambda: None)
    response = operator_client.get("/app/")
    assert response.status_code == 503
    assert b"npm run build" in response.content
    assert settings.CSRF_COOKIE_NAME in response.cookies


def test_built_index_rereads_a_changed_file(tmp_path: Path) -> None:
    assert views.built_index(tmp_path) is None
    index = tmp_path / "index.html"
    index.write_text("<html><head></head>one</html>")
    assert "one" in views.built_index(tmp_path)
    index.write_text("<html><head></head>two</html>")
    os.utime(index, (index.stat().st_atime, index.stat().st_mtime + 5))
    assert "two" in views.built_index(tmp_path)


@pytest.mark.django_db
def test_app_login_page_admits_users_without_staff_rights(make_user) -> None:
    make_user("operator", username="oscar", password="pw-Secret-123")
    client = Client()
    page = client.get("/app/login/?next=/app/requests/")
    assert page.status_code == 200
    assert b'name="next" value="/app/requests/"' in page.content
    response = client.post(
        "/app/login/",
        {"username": "oscar", "password": "pw-Secret-123", "next": "/app/requests/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/app/requests/"


@pytest.mark.django_db
def test_app_logout_needs_post_and_ends_the_session(operator_client: Client) -> None:
    assert operator_client.get("/app/logout/").status_code == 405
    response = operator_client.post("/app/logout/")
    assert response.status_code == 302
    assert operator_client.get("/app/").status_code == 302


@pytest.mark.django_db
def test_login_page_says_why_single_sign_on_failed() -> None:
    client = Client()
    session = client.session
    session[views.SSO_ERROR_SESSION_KEY] = "Single sign-on refused: no role for your groups."
    session.save()
    first = client.get("/app/login/")
    assert b"Single sign-on refused: no role for your groups." in first.content
    assert b"Single sign-on refused" not in client.get("/app/login/").content
    assert b"did not complete" in client.get("/app/login/?sso=failed").content


@pytest.mark.django_db
def test_login_page_offers_single_sign_on_only_when_configured(settings) -> None:
    settings.OIDC_RP_CLIENT_ID = ""
    assert b"single sign-on" not in Client().get("/app/login/").content
    settings.OIDC_RP_CLIENT_ID = "bcservice"
    if views.sso_login_url() is None:
        pytest.skip("the OIDC routes are not mounted in this build")
    assert b"Log in with single sign-on" in Client().get("/app/login/").content
