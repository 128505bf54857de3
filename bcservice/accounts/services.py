"""Writes for identity: OIDC logins (user, roles, scope), break-glass flags, API tokens.

Every change records its audit event in the same transaction. Secrets never reach an event:
token events carry the name and the visible prefix, never the value or its digest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from guardian.models import UserObjectPermission

from audit import services as audit
from bcservice.accounts import selectors
from bcservice.accounts.models import ApiToken, Identity, RoleMapping, validate_scope_for_role
from bcservice.auth import tokens
from bcservice.roles import ALL_ROLES, APPROVER_ROLES, STAFF_ROLES
from inventory.models import Resource, ResourceGroup


class LoginRefused(Exception):
    """An OIDC login that must not proceed; the message is safe to log and to show."""


@dataclass(frozen=True)
class OidcLogin:
    """What the backend learnt from the ID token and userinfo (no tokens, no secrets)."""

    issuer: str
    subject: str
    username: str
    email: str
    first_name: str
    last_name: str
    groups: tuple[str, ...]
    acr: str
    amr: tuple[str, ...]
    # Non-empty when the login did not satisfy BC_APPROVER_REQUIRED_ACR/AMR: approver roles
    # are withheld and this says why.
    approver_refusal: str = ""


def _current_roles(user: Any) -> set[str]:
    return set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))


def _set_roles(user: Any, roles: Iterable[str]) -> None:
    """Replace the user's role groups; groups that are not roles are left alone."""
    roles = set(roles)
    user.groups.remove(*Group.objects.filter(name__in=set(ALL_ROLES) - roles))
    user.groups.add(*Group.objects.filter(name__in=roles))
    user._bc_roles = None  # bcservice.roles caches on the instance


def _set_scope(user: Any, resource_ids: set[int], group_ids: set[int]) -> None:
    """Make the user's own view_resource/view_resourcegroup object permissions exactly these."""
    cts = selectors.scope_content_types()
    wanted = {(Resource, pk) for pk in resource_ids} | {(ResourceGroup, pk) for pk in group_ids}
    perms = {
        model: Permission.objects.get(content_type=cts[model], codename=codename)
        for model, codename in selectors.SCOPE_CODENAMES.items()
    }
    existing = UserObjectPermission.objects.filter(user=user, permission__in=perms.values())
    have = set()
    for row in existing:
        model = Resource if row.content_type_id == cts[Resource].id else ResourceGroup
        key = (model, int(row.object_pk))
        if key in wanted:
            have.add(key)
        else:
            row.delete()
    UserObjectPermission.objects.bulk_create(
        UserObjectPermission(
            user=user, permission=perms[model], content_type=cts[model], object_pk=str(pk)
        )
        for model, pk in sorted(wanted - have, key=lambda k: (k[0].__name__, k[1]))
    )
    user._bc_scope = False  # inventory.selectors caches on the instance


def _find_or_create_user(login: OidcLogin, settings: Any) -> tuple[Any, Identity, bool]:
    User = get_user_model()
    identity = (
        Identity.objects.select_for_update()
        .select_related("user")
        .filter(source=Identity.Source.OIDC, issuer=login.issuer, subject=login.subject)
        .first()
    )
    if identity is not None:
        user = identity.user
        if user.get_username() != login.username:
            # The IdP renamed the person; follow, unless the new name is taken.
            if User.objects.filter(username=login.username).exclude(pk=user.pk).exists():
                raise LoginRefused(
                    f"the IdP now calls this person {login.username!r}, "
                    "which is already another account here"
                )
            user.username = login.username
        return user, identity, False
    user = User.objects.select_for_update().filter(username=login.username).first()
    if user is None:
        user = User(username=login.username, is_active=True)
        user.set_unusable_password()
        user.save()
        identity = Identity.objects.create(
            user=user, source=Identity.Source.OIDC, issuer=login.issuer, subject=login.subject
        )
        return user, identity, True
    identity = selectors.identity_of(user)
    if identity is not None and identity.source == Identity.Source.OIDC:
        raise LoginRefused(f"the account {login.username!r} belongs to another IdP subject")
    if identity is not None and identity.breakglass:
        raise LoginRefused(f"{login.username!r} is a break-glass local account")
    if not settings.BC_OIDC_LINK_LOCAL_USERS:
        raise LoginRefused(
            f"a local account named {login.username!r} exists; an admin must remove it "
            "or set BC_OIDC_LINK_LOCAL_USERS=1"
        )
    identity = identity or Identity(user=user)
    identity.source = Identity.Source.OIDC
    identity.issuer, identity.subject = login.issuer, login.subject
    identity.save()
    return user, identity, False


@transaction.atomic
def oidc_login_sync(*, login: OidcLogin) -> tuple[Any, list[str]]:
    """Create or update the user of an OIDC login and recompute its roles and scope.

    Roles and scope come only from the role mappings of the groups in this login: a group
    the IdP no longer sends takes its role (and scope) away. Audited when anything changed.
    Returns the user and the approver roles withheld for want of MFA.
    """
    from django.conf import settings

    user, identity, created = _find_or_create_user(login, settings)
    if not user.is_active:
        raise LoginRefused(f"the account {login.username!r} is deactivated here")
    before_roles = set() if created else _current_roles(user)
    before_scope = (set(), set()) if created else selectors.direct_scope(user)

    grants = selectors.grants_for_groups(login.groups)
    roles = set(grants.roles)
    withheld: list[str] = []
    if login.approver_refusal:
        withheld = sorted(roles & set(APPROVER_ROLES))
        roles -= set(APPROVER_ROLES)

    user.email = login.email[:254]
    user.first_name, user.last_name = login.first_name[:150], login.last_name[:150]
    user.is_staff = bool(roles & set(STAFF_ROLES))
    user.save()
    _set_roles(user, roles)
    scope = (set(grants.resource_ids), set(grants.group_ids))
    _set_scope(user, *scope)

    identity.idp_groups = sorted(set(login.groups))[:200]
    identity.last_acr, identity.last_amr = login.acr[:255], list(login.amr)
    identity.last_oidc_login_at = timezone.now()
    identity.save()

    def state(roles_: set[str], scope_: tuple[set[int], set[int]]) -> dict[str, Any]:
        return {
            "roles": sorted(roles_),
            "scope": {"resources": sorted(scope_[0]), "groups": sorted(scope_[1])},
        }

    if created or state(before_roles, before_scope) != state(roles, scope):
        after = state(roles, scope) | {
            "source": "oidc",
            "matched_groups": list(grants.matched_groups),
            "acr": login.acr,
        }
        if withheld:
            after["withheld_roles"] = withheld
            after["withheld_because"] = login.approver_refusal
        audit.record(
            action="user.created" if created else "user.roles_synced",
            actor=user,
            obj=user,
            object_name=user.get_username(),
            before=None if created else state(before_roles, before_scope),
            after=after,
        )
    return user, withheld


@transaction.atomic
def identity_set_breakglass(*, actor: Any, user: Any, breakglass: bool) -> Identity:
    """Flag (or unflag) a local account as break-glass; OIDC accounts cannot be flagged."""
    identity, _ = Identity.objects.select_for_update().get_or_create(user=user)
    if breakglass and identity.source == Identity.Source.OIDC:
        raise ValueError("an OIDC account cannot be a break-glass account; use a local one")
    if identity.breakglass == breakglass:
        return identity
    identity.breakglass = breakglass
    identity.save()
    audit.record(
        action="user.breakglass_set",
        actor=actor,
        obj=user,
        object_name=user.get_username(),
        before={"breakglass": not breakglass},
        after={"breakglass": breakglass},
    )
    return identity


def _issue(*, user: Any, name: str, created_by: Any, expires_at: datetime | None) -> tuple:
    value = tokens.new_token_value()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=value[: tokens.PREFIX_SHOWN],
        digest=tokens.token_digest(value),
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        expires_at=expires_at,
    )
    return token, value


def _token_facts(token: ApiToken) -> dict[str, Any]:
    return {
        "token_id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "expires_at": token.expires_at,
    }


@transaction.atomic
def api_token_create(
    *, actor: Any, user: Any, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns it and its plain value, which is never stored."""
    token, value = _issue(user=user, name=name, created_by=actor, expires_at=expires_at)
    audit.record(
        action="token.created",
        actor=actor,
        obj=user,
        object_name=user.get_username(),
        after=_token_facts(token),
    )
    return token, value


@transaction.atomic
def api_token_revoke(*, actor: Any, token: ApiToken) -> ApiToken:
    token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.revoked_by = actor if getattr(actor, "is_authenticated", False) else None
    token.save(update_fields=["revoked_at", "revoked_by"])
    audit.record(
        action="token.revoked",
        actor=actor,
        obj=token.user,
        object_name=token.user.get_username(),
        after=_token_facts(token),
    )
    return token


def api_token_rotate(*, actor: Any, user: Any, name: str = "bc_user") -> tuple[ApiToken, str]:
    """Revoke every active token of ``user`` and issue one new one (no audit: the caller's)."""
    now = timezone.now()
    revoked_by = actor if getattr(actor, "is_authenticated", False) else None
    ApiToken.objects.filter(user=user).active().update(revoked_at=now, revoked_by=revoked_by)
    return _issue(user=user, name=name, created_by=actor, expires_at=None)


def _mapping_state(mapping: RoleMapping) -> dict[str, Any]:
    return {
        "claim_value": mapping.claim_value,
        "role": mapping.role,
        "resources": sorted(r.name for r in mapping.resources.all()),
        "resource_groups": sorted(g.name for g in mapping.resource_groups.all()),
        "description": mapping.description,
    }


@transaction.atomic
def role_mapping_save(
    *,
    actor: Any,
    mapping: RoleMapping,
    resources: Iterable[Resource] = (),
    resource_groups: Iterable[ResourceGroup] = (),
) -> RoleMapping:
    """Create or update a mapping and its scope; takes effect at each user's next login."""
    resources, resource_groups = list(resources), list(resource_groups)
    validate_scope_for_role(mapping.role, bool(resources or resource_groups))
    mapping.full_clean()
    creating = mapping.pk is None
    before = None
    if not creating:
        before = _mapping_state(RoleMapping.objects.select_for_update().get(pk=mapping.pk))
    if getattr(actor, "is_authenticated", False):
        mapping._history_user = actor
    mapping.save()
    mapping.resources.set(resources)
    mapping.resource_groups.set(resource_groups)
    after = _mapping_state(mapping)
    if before != after:
        audit.record(
            action=f"rolemapping.{'created' if creating else 'updated'}",
            actor=actor,
            obj=mapping,
            before=before,
            after=after,
        )
    return mapping


@transaction.atomic
def role_mapping_delete(*, actor: Any, mapping: RoleMapping) -> None:
    before = _mapping_state(mapping)
    pk, name = mapping.pk, str(mapping)
    if getattr(actor, "is_authenticated", False):
        mapping._history_user = actor
    mapping.delete()
    audit.record(
        action="rolemapping.deleted",
        actor=actor,
        object_type=RoleMapping._meta.label_lower,
        object_id=pk,
        object_name=name,
        before=before,
    )
