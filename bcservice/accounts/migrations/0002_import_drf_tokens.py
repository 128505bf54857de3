"""Carry DRF's plain-text tokens over as hashed API tokens, then delete the plain-text rows.

Scripts that were given a token by ``bc_user --token`` before this migration keep working: the
new row stores the digest of the same value. Skipped when rest_framework.authtoken is not
installed (it may be removed from INSTALLED_APPS later).
"""

import hashlib

from django.apps import apps as global_apps
from django.db import migrations

HAS_AUTHTOKEN = global_apps.is_installed("rest_framework.authtoken")


def import_tokens(apps, schema_editor):
    if not HAS_AUTHTOKEN:
        return
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("accounts", "ApiToken")
    for old in Token.objects.all():
        ApiToken.objects.create(
            user_id=old.user_id,
            name="imported DRF token",
            prefix=old.key[:8],
            digest=hashlib.sha256(old.key.encode("utf-8")).hexdigest(),
            created_at=old.created,
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")] + (
        [("authtoken", "0004_alter_tokenproxy_options")] if HAS_AUTHTOKEN else []
    )

    operations = [migrations.RunPython(import_tokens, migrations.RunPython.noop)]
