"""A real OpenID provider for tests: tests/e2e/oidc_provider (panva/oidc-provider under Node).

``start_idp`` installs the pinned package with ``npm ci`` when needed, starts the provider on a
free loopback port and returns a handle whose users and client redirect URIs can be changed
while it runs (the provider re-reads its JSON files on every lookup). ``unavailable`` turns a
missing node/npm/Chromium into a failure when BC_REQUIRE_E2E=1 (CI) and a skip otherwise.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "e2e" / "oidc_provider"
CLIENT_ID = "bcservice-test"
CLIENT_SECRET = "client-secret-" + "s3cr3t-value-never-logged"  # scanned for in logs
STARTUP_TIMEOUT = 20.0


def unavailable(reason: str) -> None:
    """Fail (CI, BC_REQUIRE_E2E=1) or skip (a developer's machine) with a clear reason."""
    if os.environ.get("BC_REQUIRE_E2E") == "1":
        pytest.fail(f"{reason} (BC_REQUIRE_E2E=1: required here)", pytrace=False)
    pytest.skip(reason)


class IdPUnavailable(RuntimeError):
    pass


def _npm_ci() -> None:
    """Install the pinned provider once per package-lock.json (a lock guards parallel workers)."""
    lock_hash = hashlib.sha256((PROVIDER_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = PROVIDER_DIR / "node_modules" / ".bc-installed"
    with open(PROVIDER_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == lock_hash:
            return
        npm = shutil.which("npm")
        if npm is None:
            raise IdPUnavailable("npm is not installed: cannot install oidc-provider")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PROVIDER_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise IdPUnavailable(f"npm ci in {PROVIDER_DIR} failed: {result.stderr[-2000:]}")
        stamp.write_text(lock_hash)


@dataclass
class LoopbackIdP:
    issuer: str
    state_dir: Path
    process: subprocess.Popen
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    redirect_uris: list[str] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)

    def set_user(
        self, username: str, password: str, groups: list[str], otp: str = "", **claims: Any
    ) -> None:
        users = self._read("users.json")
        users[username] = {"password": password, "groups": groups, "otp": otp, **claims}
        self._write("users.json", users)

    def allow_redirect(self, uri: str) -> None:
        if uri not in self.redirect_uris:
            self.redirect_uris.append(uri)
            self._write_clients()

    def configure(self, settings: Any) -> None:
        """Point Django at this provider (pytest-django ``settings`` fixture)."""
        settings.BC_OIDC_ISSUER = self.issuer
        settings.OIDC_RP_CLIENT_ID = self.client_id
        settings.OIDC_RP_CLIENT_SECRET = self.client_secret
        for name in (
            "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "OIDC_OP_TOKEN_ENDPOINT",
            "OIDC_OP_USER_ENDPOINT",
            "OIDC_OP_JWKS_ENDPOINT",
        ):
            setattr(settings, name, "")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def _read(self, name: str) -> Any:
        return json.loads((self.state_dir / name).read_text())

    def _write(self, name: str, data: Any) -> None:
        tmp = self.state_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(self.state_dir / name)  # atomic: the provider never reads half a file

    def _write_clients(self) -> None:
        self._write(
            "clients.json",
            [
                {
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "redirect_uris": self.redirect_uris,
                }
            ],
        )


def start_idp(state_dir: Path) -> LoopbackIdP:
    node = shutil.which("node")
    if node is None:
        raise IdPUnavailable("node is not installed: the test OpenID provider needs Node 20+")
    _npm_ci()
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "users.json").write_text("{}")
    (state_dir / "clients.json").write_text("[]")
    process = subprocess.Popen(
        [node, str(PROVIDER_DIR / "provider.mjs"), str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stderr_lines: list[str] = []
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    threading.Thread(
        target=lambda: [stderr_lines.append(x) for x in process.stderr], daemon=True
    ).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            event = json.loads(lines.get(timeout=0.2))
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        if event.get("event") == "ready":
            idp = LoopbackIdP(event["issuer"], state_dir, process, stderr_lines=stderr_lines)
            idp._write_clients()
            return idp
    process.kill()
    raise IdPUnavailable(f"the test OpenID provider did not start: {''.join(stderr_lines)[-2000:]}")


class BrowserlessLogin:
    """Drive the authorization-code flow with Django's test client on our side and ``requests``
    as the browser on the IdP's side. Each login starts with no IdP cookies (a fresh browser),
    so the IdP asks for the password again and the acr/amr follow what is entered."""

    def __init__(self, idp: LoopbackIdP, client: Any) -> None:
        self.idp, self.client = idp, client

    def login(self, username: str, password: str, otp: str = "", next_url: str = "/app/") -> Any:
        browser = requests.Session()
        start = self.client.get(f"/oidc/authenticate/?next={next_url}")
        assert start.status_code == 302, start
        answer = self._follow(browser, browser.get(start["Location"], allow_redirects=False))
        if answer.status_code == 200:  # the IdP's login page
            action = re.search(r'action="([^"]+)"', answer.text)
            assert action, answer.text[:500]
            answer = self._follow(
                browser,
                browser.post(
                    urljoin(self.idp.issuer, action.group(1)),
                    data={"username": username, "password": password, "otp": otp},
                    allow_redirects=False,
                    timeout=10,
                ),
            )
        location = answer.headers.get("Location", "")
        assert location.startswith("http://testserver/"), (
            f"the IdP did not redirect back: {answer.status_code} {answer.text[:300]}"
        )
        parts = urlsplit(location)
        return self.client.get(f"{parts.path}?{parts.query}")

    def _follow(self, browser: requests.Session, answer: requests.Response) -> requests.Response:
        """Follow the IdP's own redirects; stop at a page or at a redirect back to Django."""
        location = answer.headers.get("Location", "")
        while answer.is_redirect and not location.startswith("http://testserver/"):
            answer = browser.get(
                urljoin(self.idp.issuer, location), allow_redirects=False, timeout=10
            )
            location = answer.headers.get("Location", "")
        return answer


def me(client: Any) -> dict[str, Any]:
    """GET /api/v1/me/ as ``client``; asserts it answered."""
    response = client.get("/api/v1/me/")
    assert response.status_code == 200, response.content
    return response.json()
