"""The admin shows audit events and checkpoints and refuses every change, to every role."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit import services
from audit.checkpoints import checkpoint_create
from audit.models import AuditCheckpoint, AuditEvent


@pytest.fixture
def recorded(signing_keys) -> tuple[AuditEvent, AuditCheckpoint]:
    event = services.record(action="admin.event", object_name="x")
    checkpoint_create()
    return event, AuditCheckpoint.objects.get()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["admin", "auditor"])
@pytest.mark.parametrize("model", ["auditevent", "auditcheckpoint"])
def test_audit_models_are_read_only_in_admin(client, make_user, recorded, role, model):
    client.force_login(make_user(role))
    obj = recorded[0] if model == "auditevent" else recorded[1]
    before = (AuditEvent.objects.count(), AuditCheckpoint.objects.count())
    assert client.get(reverse(f"admin:audit_{model}_changelist")).status_code == 200
    assert client.get(reverse(f"admin:audit_{model}_change", args=[obj.pk])).status_code == 200
    assert client.get(reverse(f"admin:audit_{model}_add")).status_code == 403
    change = client.post(reverse(f"admin:audit_{model}_change", args=[obj.pk]), {"hash": "0"})
    assert change.status_code == 403
    delete = client.post(reverse(f"admin:audit_{model}_delete", args=[obj.pk]), {"post": "yes"})
    assert delete.status_code == 403
    bulk = client.post(
        reverse(f"admin:audit_{model}_changelist"),
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302, 403)
    assert (AuditEvent.objects.count(), AuditCheckpoint.objects.count()) == before
    assert AuditEvent.objects.get(pk=recorded[0].pk).hash == recorded[0].hash
