"""App config: admin/auditor permissions on the accounts models, and login bookkeeping."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


def grant_role_permissions(using: str = "default", **kwargs: Any) -> None:
    """Let the admin role manage mappings, identities and tokens, and the auditor read them.

    bcservice.roles.sync_role_groups resets both groups after every app's migrate; this receiver
    is connected after it (this app is listed after inventory) and adds the accounts models back.
    """
    from django.contrib.auth.models import Group, Permission

    from bcservice.roles import ADMIN, AUDITOR

    perms = Permission.objects.using(using).filter(content_type__app_label="accounts")
    admin_group = Group.objects.using(using).filter(name=ADMIN).first()
    auditor_group = Group.objects.using(using).filter(name=AUDITOR).first()
    if admin_group is not None:
        admin_group.permissions.add(*perms)
    if auditor_group is not None:
        auditor_group.permissions.add(*perms.filter(codename__startswith="view_"))


class AccountsConfig(AppConfig):
    name = "bcservice.accounts"
    label = "accounts"
    verbose_name = "Identity and access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bcservice.auth.session import remember_login_method

        post_migrate.connect(grant_role_permissions, dispatch_uid="bc-accounts-role-perms")
        user_logged_in.connect(remember_login_method, dispatch_uid="bc-remember-login-method")
