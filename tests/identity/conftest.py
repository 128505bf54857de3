"""Identity fixtures: a real OpenID provider on loopback (session-wide) and helpers around it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bcservice.accounts.models import RoleMapping
from bcservice.accounts.services import role_mapping_save
from tests.identity.idp import (
    BrowserlessLogin,
    IdPUnavailable,
    LoopbackIdP,
    start_idp,
    unavailable,
)


@pytest.fixture(scope="session")
def oidc_idp(tmp_path_factory) -> Iterator[LoopbackIdP]:
    try:
        idp = start_idp(tmp_path_factory.mktemp("oidc-idp"))
    except IdPUnavailable as exc:
        unavailable(str(exc))
    idp.allow_redirect("http://testserver/oidc/callback/")
    yield idp
    idp.stop()


@pytest.fixture
def sso(oidc_idp, settings, client) -> BrowserlessLogin:
    """OIDC switched on against the loopback IdP, and a way to log in through it."""
    from bcservice.auth import oidc

    oidc_idp.configure(settings)
    oidc._discovery_cache.clear()
    return BrowserlessLogin(oidc_idp, client)


@pytest.fixture
def mapping(db) -> Callable[..., RoleMapping]:
    def make(claim_value: str, role: str, resources=(), resource_groups=()) -> RoleMapping:
        return role_mapping_save(
            actor=None,
            mapping=RoleMapping(claim_value=claim_value, role=role),
            resources=resources,
            resource_groups=resource_groups,
        )

    return make
