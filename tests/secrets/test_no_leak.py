"""Invariant 7: secrets never reach the database, logs, audit events, API responses or errors.

Known secret values live in a real OpenBao (KV v2): the MongoDB monitoring and execution
passwords, a PagerDuty routing key and a Slack webhook URL. With them the service:

- collects a MongoDB resource (the replica-set simulator, real wire protocol and SCRAM) while
  healthy, while a member is down, and with a monitoring password the target refuses;
- alerts through PagerDuty (whose receiver fails and echoes the key back) and Slack;
- runs an execution whose steps fetch the execution account, use it against the simulator,
  return it in their output and finally raise an error that quotes it, as a careless driver
  might.

Then every log record (all loggers at DEBUG, SQL included), every row of every table (audit,
statuses, samples, deliveries, history...), every API response and every error text is searched
for the values: none may appear. The channel secrets may appear only in what was sent to their
own receivers.
"""

from __future__ import annotations

import json
import logging
import secrets as pysecrets
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from pymongo import MongoClient

from audit.models import AuditEvent
from bcservice.logging import JsonFormatter
from connectors.collection import collect_resource
from connectors.contract import Capability, Phase, PlanStep, StepResult, Support, Target
from connectors.lab.mongo_sim import MongoReplicaSetSimulator
from connectors.platforms.mongodb import MongoConnector
from executions import planning, runner
from executions import services as executions
from notifications import delivery
from notifications.models import Delivery, Route
from notifications.services import route_save
from tests.notifications.conftest import _start_receiver

MON_USER, EXE_USER = "bc_leak_monitor", "bc_leak_execute"
MON_PW = f"MonPw-{pysecrets.token_hex(8)}"
EXE_PW = f"ExePw-{pysecrets.token_hex(8)}"
WRONG_PW = f"WrongPw-{pysecrets.token_hex(8)}"
PD_KEY = f"PDKEY{pysecrets.token_hex(12)}"
SLACK_TOKEN = f"SlackTok{pysecrets.token_hex(10)}"
DB_SECRETS = (MON_PW, EXE_PW, WRONG_PW)
CHANNEL_SECRETS = (PD_KEY, SLACK_TOKEN)


class LeakyMongoConnector(MongoConnector):
    """The real MongoDB observation, plus a plan whose steps handle credentials carelessly."""

    def capabilities(self, target: Target | None = None) -> dict[str, Capability]:
        return {**super().capabilities(target), "switchover": Capability(Support.YES, "test")}

    def plan(self, kind: str, target: Target) -> list[PlanStep]:
        def client(purpose: str) -> tuple[MongoClient, dict[str, str]]:
            creds = dict(target.credentials(purpose))
            host, port = target.connection["primary_member"].rsplit(":", 1)
            mongo = MongoClient(
                host,
                int(port),
                username=creds["username"],
                password=creds["password"],
                authSource="admin",
                directConnection=True,
                serverSelectionTimeoutMS=3000,
                socketTimeoutMS=3000,
            )
            return mongo, creds

        def reachable(ctx: Any) -> StepResult:
            mongo, _ = client("monitor")
            with mongo:
                mongo.admin.command("hello")
            return StepResult(ok=True, detail="primary answers")

        def fence(ctx: Any) -> StepResult:
            mongo, creds = client("execute")
            with mongo:
                state = mongo.admin.command("replSetGetStatus")["myState"]
            uri = f"mongodb://{creds['username']}:{creds['password']}@{target.connection['primary_member']}"
            return StepResult(
                ok=True,
                detail=f"fenced using {creds['password']} (state {state})",
                data={"password": creds["password"], "uri": uri, "note": creds["password"]},
            )

        def promote(ctx: Any) -> StepResult:
            _, creds = client("execute")
            raise RuntimeError(f"auth {creds['username']}:{creds['password']} rejected by driver")

        return [
            PlanStep("reachable", Phase.PRECHECK, reachable, timeout_seconds=10),
            PlanStep("fence", Phase.STEP, fence, changes_state=True, timeout_seconds=10),
            PlanStep("promote", Phase.STEP, promote, changes_state=True, timeout_seconds=10),
        ]


@pytest.fixture
def lab(tmp_path, bao_root):
    sim = MongoReplicaSetSimulator(tmp_path / "mongodb.json")
    info = sim.start()
    sim.add_user(MON_USER, MON_PW, ("clusterMonitor",))
    sim.add_user(EXE_USER, EXE_PW, ("clusterMonitor", "clusterManager"))
    kv = bao_root.secrets.kv.v2
    kv.create_or_update_secret(
        path="bcservice/db/catalog/monitor", secret={"username": MON_USER, "password": MON_PW}
    )
    kv.create_or_update_secret(
        path="bcservice/db/catalog/execute", secret={"username": EXE_USER, "password": EXE_PW}
    )
    yield {"sim": sim, "kv": kv, **info}
    sim.stop()


@pytest.fixture
def receivers(settings, bao_root):
    servers = []
    pd_server, pd = _start_receiver()
    slack_server, slack = _start_receiver()
    servers += [pd_server, slack_server]
    pd.statuses = [500] * 5
    pd.error_body = json.dumps({"message": f"invalid routing key {PD_KEY}"}).encode()
    settings.BC_PAGERDUTY_EVENTS_URL = f"{pd.url}/v2/enqueue"
    kv = bao_root.secrets.kv.v2
    kv.create_or_update_secret(path="bcservice/notify/pagerduty", secret={"routing_key": PD_KEY})
    kv.create_or_update_secret(
        path="bcservice/notify/slack",
        secret={"webhook_url": f"{slack.url}/services/T01/B02/{SLACK_TOKEN}"},
    )
    yield {"pagerduty": pd, "slack": slack}
    for server in servers:
        server.shutdown()
        server.server_close()


def _api(client: Any, path: str) -> str:
    response = client.get(f"/api/v1/{path}")
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


def _all_rows() -> str:
    """Every row of every table the service owns or uses, as text."""
    chunks = []
    for model in apps.get_models(include_auto_created=True):
        rows = list(model._default_manager.using("default").values())
        chunks.append(json.dumps(rows, default=str))
    return "\n".join(chunks)


def _log_text(caplog: Any) -> str:
    formatter = JsonFormatter()
    parts = []
    for record in caplog.records:
        parts.append(formatter.format(record))
        parts.append(record.getMessage())
    return "\n".join(parts)


def _found(text: str, values: tuple[str, ...]) -> list[str]:
    return [v for v in values if v in text]


@pytest.mark.django_db
def test_known_secrets_appear_nowhere(
    vault_env,
    lab,
    receivers,
    make_resource,
    make_user,
    client_for,
    caplog,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    caplog.set_level(logging.DEBUG)
    for name in ("django.db.backends", "pymongo", "urllib3", "hvac", "notifications", "connectors"):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True  # every SQL statement and its parameters is logged
    monkeypatch.setattr(planning, "get_connector", lambda platform: LeakyMongoConnector())
    monkeypatch.setattr(executions, "enqueue", lambda execution_id: None)

    route_save(
        actor="admin",
        route=Route(
            name="pager",
            kinds="status.*, execution.*",
            environments=["production"],
            production_on_call=True,
            channel="pagerduty",
            secret_ref="vault:bcservice/notify/pagerduty",
        ),
    )
    route_save(
        actor="admin",
        route=Route(
            name="chat",
            kinds="*",
            channel="slack",
            secret_ref="vault:bcservice/notify/slack",
        ),
    )
    resource = make_resource(
        "catalog-mongo",
        platform="mongodb",
        connection=lab["connection"],
        secret_ref="vault:bcservice/db/catalog#purpose",
        timeout_seconds=3,
    )
    sim = lab["sim"]

    def collect() -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return collect_resource(resource.pk)

    assert collect().state == "green"
    sim.inject("standby_down")
    assert collect().visibility == "lost"
    sim.inject("heal")
    # A monitoring password the target refuses: the refused value is a secret too.
    lab["kv"].create_or_update_secret(
        path="bcservice/db/catalog/monitor", secret={"username": MON_USER, "password": WRONG_PW}
    )
    lost = collect()
    assert lost.visibility == "lost"
    assert any("auth" in r["code"] for r in lost.reasons), lost.reasons
    lab["kv"].create_or_update_secret(
        path="bcservice/db/catalog/monitor", secret={"username": MON_USER, "password": MON_PW}
    )
    assert collect().state == "green"

    # An approved request and its execution, with careless steps.
    from approvals import services as approvals

    operator = make_user("operator")
    request = approvals.request_create(
        actor=operator,
        kind="switchover",
        target_site=resource.dr_site,
        reason="leak test",
        resource=resource,
        change_ticket="CHG1234567",
    )
    for role in ("approver_it", "approver_business"):
        request.refresh_from_db()
        if request.state != "approved":
            approvals.request_approve(request, actor=make_user(role), comment="ok")
    request.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        execution = executions.execution_start(
            actor=operator, request=request, confirm=resource.name
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert runner.run_execution(execution.pk) == "failed"
    steps = {s.name: s for s in execution.steps.all()}
    assert steps["fence"].state == "succeeded" and steps["promote"].state == "failed"
    assert "***" in steps["promote"].detail  # the password in the error was scrubbed

    # The worker delivers every notification (PagerDuty fails and echoes its key back).
    outcomes = [delivery.attempt(d.pk) for d in Delivery.objects.filter(status="pending")]
    assert "retrying" in outcomes and "delivered" in outcomes
    assert Delivery.objects.filter(route_name="pager", status="retrying").exists()
    assert receivers["slack"].requests, "slack got nothing"

    auditor = client_for(make_user("auditor"))
    api = "\n".join(
        _api(auditor, path)
        for path in (
            "resources/",
            f"resources/{resource.pk}/",
            f"executions/{execution.pk}/",
            f"requests/{request.pk}/",
            "audit/events/",
        )
    )
    errors = "\n".join(Delivery.objects.values_list("last_error", flat=True))
    checked = {
        "logs": _log_text(caplog),
        "database": _all_rows(),
        "audit": json.dumps(list(AuditEvent.objects.values()), default=str),
        "api": api,
        "delivery errors": errors,
    }
    assert "catalog-mongo" in checked["api"] and "execution." in checked["audit"]
    for where, text in checked.items():
        assert not _found(text, DB_SECRETS + CHANNEL_SECRETS), where
        assert vault_env["root_token"] not in text, where
    # What went to the receivers: the channel's own secret, never a database password.
    sent = json.dumps(
        [r["json"] for r in receivers["pagerduty"].requests + receivers["slack"].requests]
    )
    assert not _found(sent, DB_SECRETS)
    assert PD_KEY in sent  # (the routing key is in the PagerDuty body, as it must be)
