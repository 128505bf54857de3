"""``manage.py demo_data``: sites, resources pointing at the local lab, a group and demo users.

Idempotent: existing objects are updated in place. Everything goes through the same services as
the admin, so the demo's inventory has history and audit events like real data.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from bcservice import request_context
from bcservice.services import user_set_roles
from inventory import services
from inventory.models import Resource, ResourceGroup, Site

DEMO_USERS = [
    ("demo-admin", ["admin"]),
    ("demo-operator", ["operator"]),
    ("demo-it", ["approver_it"]),
    ("demo-business", ["approver_business"]),
    ("demo-auditor", ["auditor"]),
    ("demo-viewer", ["viewer"]),
]
DEMO_PASSWORD_SUFFIX = "-pass-2026"  # noqa: S105 - printed demo logins, local only

# name, platform, tier, environment, owner, rpo, yellow, red
DEMO_RESOURCES = [
    ("orders-pg", "postgres", 1, "production", "team-orders", 60, 15, 60),
    ("catalog-mongo", "mongodb", 1, "production", "team-catalog", 60, 15, 60),
    ("payments-mssql", "mssql", 1, "production", "team-payments", 30, 10, 30),
    ("analytics-snowflake", "snowflake", 2, "production", "team-analytics", 900, 600, 900),
    ("orders-pg-staging", "postgres", 3, "staging", "team-orders", 300, 120, 300),
]


class Command(BaseCommand):
    help = "Load demo sites, resources (on the local lab), a group and demo users."

    def handle(self, *args: Any, **options: Any) -> None:
        lab_file = settings.BC_LAB_DIR / "lab.json"
        targets = json.loads(lab_file.read_text())["targets"] if lab_file.exists() else {}
        if not targets:
            self.stderr.write(f"no lab found at {lab_file}: resources get placeholder hosts")
        with request_context.bind("cli"):
            self._load(targets)

    def _load(self, targets: dict[str, Any]) -> None:
        primary = self._site("london-dc1", "eu-west-2", "primary", "Primary data centre")
        dr = self._site("dublin-dc2", "eu-west-1", "dr", "DR data centre")
        made: dict[str, Resource] = {}
        for name, platform, tier, env, owner, rpo, yellow, red in DEMO_RESOURCES:
            target = targets.get(platform)
            if target is None:
                self.stderr.write(f"skipping {name}: the lab has no {platform} target")
                continue
            resource = Resource.objects.filter(name=name).first() or Resource(name=name)
            heartbeat = target.get("heartbeat") or {}
            fields = {
                "platform": platform,
                "tier": tier,
                "environment": env,
                "owner": owner,
                "primary_site": primary,
                "dr_site": dr,
                "connection": target["connection"],
                "secret_ref": target["secret_ref"],
                "rpo_target_seconds": rpo,
                "yellow_lag_seconds": yellow,
                "red_lag_seconds": red,
                "freshness_seconds": 60,
                "collect_interval_seconds": 5,
                "timeout_seconds": 3.0,
                "heartbeat_table": heartbeat.get("table", ""),
                "heartbeat_column": heartbeat.get("column", "ts"),
            }
            for key, value in fields.items():
                setattr(resource, key, value)
            made[name] = services.save_object(actor="demo_data", instance=resource)
        group = ResourceGroup.objects.filter(name="checkout").first() or ResourceGroup(
            name="checkout"
        )
        group.tier, group.description = 1, "Checkout: payments, then orders, then catalog"
        group = services.save_object(actor="demo_data", instance=group)
        order = [n for n in ("payments-mssql", "orders-pg", "catalog-mongo") if n in made]
        services.group_set_members(
            actor="demo_data", group=group, resources=[made[n] for n in order]
        )
        self.stdout.write(f"demo inventory: {len(made)} resources, group 'checkout' {order}")
        self.stdout.write("demo logins (local accounts, for this demo only):")
        for username, roles in DEMO_USERS:
            password = username.removeprefix("demo-") + DEMO_PASSWORD_SUFFIX
            user_set_roles(actor="demo_data", username=username, roles=roles, password=password)
            self.stdout.write(f"  {username:<15} {password:<22} roles: {', '.join(roles)}")

    def _site(self, name: str, region: str, role: str, description: str) -> Site:
        site = Site.objects.filter(name=name).first() or Site(name=name)
        site.region, site.role, site.description = region, role, description
        return services.save_object(actor="demo_data", instance=site)
