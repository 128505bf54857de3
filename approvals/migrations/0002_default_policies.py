"""Ship the default approval policies (editable afterwards in the admin, with history).

Tier 1: two distinct approvers covering approver_it and approver_business, a change ticket in
the CHG/INC format, approvals valid 4 h, 30 min anti-flapping. Tier 2: one IT approver, ticket
required, 8 h, 30 min. Tier 3 and every non-production environment: one approver, ticket
optional (checked against the format when given), 24 h, no flapping window.

The rows are frozen here on purpose (a migration must not import app code that may change).
"""

from django.db import migrations
from django.utils import timezone

TICKET = r"^(CHG|INC)\d{6,}$"
NON_PRODUCTION = ("staging", "development", "test")


def default_policies():
    rows = [
        dict(
            name="Tier 1 (default)",
            tier=1,
            min_approvers=2,
            required_roles=["approver_business", "approver_it"],
            require_change_ticket=True,
            approval_validity_minutes=240,
            flap_window_minutes=30,
            description="Two-person rule: one IT and one business approver, never the requester.",
        ),
        dict(
            name="Tier 2 (default)",
            tier=2,
            min_approvers=1,
            required_roles=["approver_it"],
            require_change_ticket=True,
            approval_validity_minutes=480,
            flap_window_minutes=30,
            description="One IT approver.",
        ),
        dict(
            name="Tier 3 (default)",
            tier=3,
            min_approvers=1,
            required_roles=[],
            require_change_ticket=False,
            approval_validity_minutes=1440,
            flap_window_minutes=0,
            description="One approver of either kind.",
        ),
    ]
    for tier in (1, 2):
        for environment in NON_PRODUCTION:
            rows.append(
                dict(
                    name=f"Tier {tier} {environment} (default)",
                    tier=tier,
                    environment=environment,
                    min_approvers=1,
                    required_roles=[],
                    require_change_ticket=False,
                    approval_validity_minutes=1440,
                    flap_window_minutes=0,
                    description="Non-production is lighter: one approver, ticket optional.",
                )
            )
    for row in rows:
        row.setdefault("kind", "")
        row.setdefault("environment", "")
        row["change_ticket_pattern"] = TICKET
    return rows


def create_defaults(apps, schema_editor):
    Policy = apps.get_model("approvals", "ApprovalPolicy")
    History = apps.get_model("approvals", "HistoricalApprovalPolicy")
    now = timezone.now()
    for row in default_policies():
        policy, created = Policy.objects.get_or_create(
            tier=row["tier"], kind=row["kind"], environment=row["environment"], defaults=row
        )
        if created:
            # Historical models are not signalled inside migrations: write the first row so
            # the admin's history shows where the policy came from.
            History.objects.create(
                **{f.attname: getattr(policy, f.attname) for f in Policy._meta.concrete_fields},
                history_date=now,
                history_type="+",
                history_change_reason="shipped default (data migration)",
            )


class Migration(migrations.Migration):
    dependencies = [("approvals", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
