"""PgPair: a real PostgreSQL primary and streaming standby that tests and people can steer."""

from __future__ import annotations

import json
import os
import pwd
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.lab.postgres import PgPair
from inventory.connection_settings import validate

pytestmark = pytest.mark.integration


def eventually(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def one(pair: PgPair, node: str, query: str, role: str = "execute") -> Any:
    with psycopg.connect(pair.dsn(node, role), autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None


def roles_now(pair: PgPair) -> dict[str, Any]:
    return {name: node["in_recovery"] for name, node in pair.status()["nodes"].items()}


def test_up_is_idempotent_and_publishes_valid_settings(pg_lab: dict, pair: PgPair) -> None:
    assert pg_lab["created_seconds"] < 20
    started = time.monotonic()
    again = pair.up()
    assert time.monotonic() - started < 3
    assert again == {k: pg_lab[k] for k in ("connection", "credentials", "heartbeat")}
    assert validate("postgres", again["connection"]) == {}
    assert again["credentials"]["monitor"]["username"] == "bc_monitor"
    assert again["credentials"]["execute"]["username"] == "bc_admin"
    assert again["heartbeat"] == {"table": "bc_heartbeat", "column": "ts"}
    assert roles_now(pair) == {"primary": False, "standby": True}


def test_state_is_shared_with_another_process_view(pair: PgPair) -> None:
    other = PgPair(pair.base_dir)  # what the lab daemon or `manage.py lab` constructs
    other.inject("pause")
    status = pair.status()
    assert status["faults"] == ["pause_replay"]
    assert status["nodes"]["standby"]["replay_paused"] is True
    state_file = pair.base_dir / "pair.json"
    assert state_file.stat().st_mode & 0o077 == 0  # it holds passwords
    assert Path(json.loads(state_file.read_text())["data_root"]).is_dir()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the servers to postgres")
def test_servers_run_as_the_postgres_user(pair: PgPair) -> None:
    uid = pwd.getpwnam("postgres").pw_uid
    for node in pair.status()["nodes"].values():
        assert os.stat(f"/proc/{node['pid']}").st_uid == uid


def test_roles_and_privileges(pair: PgPair) -> None:
    with psycopg.connect(pair.dsn("primary", "monitor"), autocommit=True) as conn:
        flags = conn.execute(
            "SELECT rolsuper, rolreplication, rolcreaterole, rolcreatedb, rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert flags == (False, False, False, False, False)
        member_of = conn.execute(
            "SELECT array_agg(g.rolname::text ORDER BY g.rolname) FROM pg_auth_members m "
            "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
            "WHERE u.rolname = current_user"
        ).fetchone()[0]
        assert member_of == ["pg_monitor"]
        assert conn.execute("SELECT ts FROM bc_heartbeat WHERE id = 1").fetchone()[0]
        # Read-only by privilege, not only by its default_transaction_read_only setting.
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE bc_heartbeat SET ts = now()")
    assert one(pair, "primary", "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    methods = one(
        pair,
        "primary",
        "SELECT array_agg(DISTINCT auth_method) FROM pg_hba_file_rules WHERE type = 'host'",
    )
    assert methods == ["scram-sha-256"]
    wrong = pair.dsn("standby", "monitor").replace("password=", "password=x")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong)


def test_heartbeat_tick_and_write_load_reach_the_standby(pair: PgPair) -> None:
    pair.heartbeat_tick()
    pair.write_load(50)
    written = one(pair, "primary", "SELECT ts FROM bc_heartbeat WHERE id = 1")
    assert eventually(
        lambda: one(pair, "standby", "SELECT ts FROM bc_heartbeat WHERE id = 1") == written
    )
    assert one(pair, "standby", "SELECT count(*) FROM bc_load") >= 50


@pytest.mark.parametrize(
    ("fault", "expect"),
    [
        ("standby_down", {"standby": {"running": False}, "primary": {"in_recovery": False}}),
        ("primary_down", {"primary": {"running": False}, "standby": {"in_recovery": True}}),
        ("timeout", {"standby": {"running": True, "frozen": True, "in_recovery": None}}),
        ("pause_replay", {"standby": {"replay_paused": True}}),
        ("lag", {"standby": {"replay_paused": False, "in_recovery": True}}),
    ],
)
def test_faults_show_in_status_and_heal_undoes_them(
    pair: PgPair, fault: str, expect: dict[str, dict[str, Any]]
) -> None:
    pair.inject(fault)
    status = pair.status()
    assert status["faults"] == [fault]
    for node, fields in expect.items():
        assert {k: status["nodes"][node][k] for k in fields} == fields
    if fault == "lag":
        assert one(pair, "standby", "SHOW recovery_min_apply_delay") == "1h"
    pair.inject("heal")
    status = pair.status()
    assert status["faults"] == []
    assert {n: (v["running"], v["frozen"]) for n, v in status["nodes"].items()} == {
        "primary": (True, False),
        "standby": (True, False),
    }
    assert roles_now(pair) == {"primary": False, "standby": True}
    assert one(pair, "standby", "SHOW recovery_min_apply_delay") == "0"


def test_timeout_fault_makes_connections_hang_not_fail(pair: PgPair) -> None:
    pair.inject("timeout")
    started = time.monotonic()
    with pytest.raises(psycopg.errors.ConnectionTimeout):
        psycopg.connect(
            pair.dsn("standby", "monitor").replace("connect_timeout=5", "connect_timeout=2")
        )
    assert 1.5 < time.monotonic() - started < 4
    pair.heartbeat_tick()  # the primary is untouched


def test_faults_survive_down_and_up_until_heal(pair: PgPair) -> None:
    pair.inject("pause_replay")
    pair.down()
    assert not any(n["running"] for n in pair.status()["nodes"].values())
    pair.up()
    status = pair.status()
    assert status["faults"] == ["pause_replay"]
    assert status["nodes"]["standby"]["replay_paused"] is True


def test_heal_brings_back_the_configured_roles_after_a_dr_promotion(pair: PgPair) -> None:
    one(pair, "standby", "SELECT pg_promote(true, 30)")
    assert roles_now(pair) == {"primary": False, "standby": False}
    pair.inject("heal")
    assert roles_now(pair) == {"primary": False, "standby": True}
    assert one(
        pair, "primary", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    )


def test_unknown_fault_is_refused(pair: PgPair) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        pair.inject("meteor")


def test_a_second_pair_from_nothing_and_destroy(tmp_path: Path) -> None:
    second = PgPair(tmp_path / "second", name="second")
    started = time.monotonic()
    info = second.up()
    created = time.monotonic() - started
    try:
        assert created < 20
        data_root = Path(json.loads((tmp_path / "second" / "pair.json").read_text())["data_root"])
        assert one(second, "standby", "SELECT pg_is_in_recovery()") is True
        assert info["connection"]["slot_name"] == "second_dr_slot"
    finally:
        second.destroy()
    assert not data_root.exists()
    assert second.status() == {
        "created": False,
        "supported_faults": list(second.faults),
        "nodes": {},
        "faults": [],
    }
