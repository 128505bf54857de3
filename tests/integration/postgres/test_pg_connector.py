"""PostgresConnector.observe() against the real lab pair: every side, state and error outcome."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from connectors.contract import (
    CAPABILITY_NAMES,
    HeartbeatConfig,
    Observation,
    Outcome,
    Replication,
    Role,
    Support,
)
from connectors.lab.pg_server import write_as_server
from connectors.lab.postgres import PgPair
from connectors.platforms.postgres import PostgresConnector
from connectors.registry import get_connector

from .conftest import TIMEOUT_SECONDS

pytestmark = pytest.mark.integration

connector = PostgresConnector()


def observe(target: Any) -> Observation:
    return connector.observe(target)


def eventually(check: Callable[[], Observation | None], seconds: float = 10.0) -> Observation:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result is not None or time.monotonic() > deadline:
            assert result is not None, "condition not reached in time"
            return result
        time.sleep(0.1)


def caught_up(target: Any) -> Observation:
    return eventually(lambda: (o := observe(target)) and (o if o.lag_bytes == 0 else None))


def execute(pair: PgPair, node: str, query: str) -> Any:
    with psycopg.connect(pair.dsn(node), autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchone() if cur.description else None


def no_secrets(obs: Observation, *secrets: str) -> None:
    text = json.dumps(
        [obs.raw, obs.notes, obs.primary.error, obs.dr.error, obs.primary.details, obs.dr.details],
        default=str,
    )
    for secret in secrets:
        assert secret not in text
    assert "password=" not in text


def test_registry_and_capabilities(target_for: Callable[..., Any]) -> None:
    assert isinstance(get_connector("postgres"), PostgresConnector)
    caps = connector.capabilities()
    assert set(caps) == set(CAPABILITY_NAMES)
    assert caps["monitor"].support is caps["replication_marker"].support is Support.YES
    assert caps["heartbeat"].support is Support.CONDITIONAL
    assert caps["heartbeat"].reason == "needs a heartbeat table configured"
    # Failover and drill are SQL only; switchover and failback rejoin the old primary on its
    # host, through the 'rejoin' host action (an argv list, never a shell string).
    assert caps["failover"].support is caps["drill"].support is Support.YES
    for name in ("switchover", "failback"):
        assert caps[name].support is Support.CONDITIONAL
        assert "needs the 'rejoin' host action" in caps[name].reason
    shell = connector.capabilities(target_for(host_actions={"rejoin": "pg_rewind ..."}))
    assert shell["switchover"].support is Support.CONDITIONAL
    assert "not a shell string" in shell["switchover"].reason
    argv = {"rejoin": ["/usr/local/bin/rejoin", "--node", "{node}"]}
    with_all = connector.capabilities(target_for(host_actions=argv))
    assert all(c.support is Support.YES for c in with_all.values())


def test_healthy_pair_streams_with_no_lag_even_when_idle(
    pair: PgPair, target: Any, target_for: Callable[..., Any], pg_lab: dict
) -> None:
    pair.heartbeat_tick()
    first = caught_up(target)
    time.sleep(3)  # an idle primary: nothing written, the last replayed commit gets older
    timings = []
    for tgt in (target, target_for(heartbeat=False)):
        started = time.monotonic()
        obs = observe(tgt)
        timings.append(time.monotonic() - started)
        assert obs.replication is Replication.STREAMING, obs.notes
        assert obs.lag_bytes is not None and obs.lag_bytes <= 1024
        assert obs.lag_seconds is not None and obs.lag_seconds < 0.5
        assert obs.marker_available and obs.primary_marker and obs.dr_marker
    assert max(timings) < 1.5
    assert (obs.primary.outcome, obs.primary.role) == (Outcome.OK, Role.PRIMARY)
    assert (obs.dr.outcome, obs.dr.role) == (Outcome.OK, Role.STANDBY)
    assert obs.primary.healthy and obs.dr.healthy
    assert first.heartbeat_at is not None  # the replayed heartbeat, read on the standby
    assert first.raw["computed"]["current_primary"] == "primary"
    assert first.raw["primary"]["pg_stat_replication"][0]["state"] == "streaming"
    assert first.raw["dr"]["pg_stat_wal_receiver"]["status"] == "streaming"
    assert obs.primary.endpoint == f"127.0.0.1:{pg_lab['connection']['primary_port']}"
    no_secrets(first, pg_lab["credentials"]["monitor"]["password"])


def test_paused_replay_with_writes_is_paused_and_lag_grows(
    pair: PgPair, target: Any, target_for: Callable[..., Any]
) -> None:
    pair.inject("pause_replay")
    seen = []
    for _ in range(2):
        pair.heartbeat_tick()
        pair.write_load(200)
        time.sleep(1.1)
        pair.heartbeat_tick()
        seen.append(observe(target))
    for obs in seen:
        assert obs.replication is Replication.PAUSED
        assert obs.lag_bytes and obs.lag_bytes > 0
        assert "WAL replay is paused on itest-standby" in obs.notes
    assert 0 < seen[0].lag_seconds < seen[1].lag_seconds
    # Without a heartbeat: the age of the last replayed transaction.
    assert observe(target_for(heartbeat=False)).lag_seconds > 0


def test_lag_fault_keeps_streaming_while_lag_grows(pair: PgPair, target: Any) -> None:
    pair.inject("lag")
    seen = []
    for _ in range(2):
        pair.heartbeat_tick()
        time.sleep(1.1)
        pair.heartbeat_tick()
        seen.append(observe(target))
    assert [o.replication for o in seen] == [Replication.STREAMING] * 2
    assert 0 < seen[0].lag_seconds < seen[1].lag_seconds
    assert seen[1].lag_bytes > 0
    assert any("recovery_min_apply_delay = 1h" in n for n in seen[1].notes)


def test_standby_down(pair: PgPair, target: Any, pg_lab: dict) -> None:
    pair.inject("standby_down")
    obs = observe(target)
    assert obs.dr.outcome is Outcome.CONNECTION_ERROR
    assert str(pg_lab["connection"]["dr_port"]) in obs.dr.error
    assert (obs.primary.outcome, obs.primary.role) == (Outcome.OK, Role.PRIMARY)
    assert obs.primary.marker and obs.primary_marker == obs.primary.marker
    assert obs.replication is Replication.UNKNOWN
    assert obs.lag_bytes is None and obs.lag_seconds is None and not obs.marker_available
    assert "replication slot 'itest_dr_slot' is not in use" in obs.notes


def test_primary_down(pair: PgPair, target: Any) -> None:
    pair.heartbeat_tick()
    pair.inject("primary_down")
    obs = observe(target)
    assert obs.primary.outcome is Outcome.CONNECTION_ERROR
    assert (obs.dr.outcome, obs.dr.role) == (Outcome.OK, Role.STANDBY)
    assert obs.dr_marker and obs.heartbeat_at is not None
    assert obs.replication is Replication.UNKNOWN
    # The primary cannot be seen: lag is the age of the heartbeat the standby last applied.
    assert obs.lag_seconds is not None and obs.lag_seconds >= 0


def test_wrong_password_is_auth_failed_and_never_echoed(target_for: Callable[..., Any]) -> None:
    secret = "Wrong-Secret-Value-42"
    obs = observe(target_for(credentials={"username": "bc_monitor", "password": secret}))
    assert obs.primary.outcome is obs.dr.outcome is Outcome.AUTH_FAILED
    assert "password authentication failed" in obs.primary.error
    assert obs.replication is Replication.UNKNOWN
    no_secrets(obs, secret)


def test_missing_privilege_is_permission_denied(
    pair: PgPair, target_for: Callable[..., Any]
) -> None:
    execute(pair, "primary", "DROP ROLE IF EXISTS bc_nopriv")
    execute(pair, "primary", "CREATE ROLE bc_nopriv LOGIN PASSWORD 'nopriv-pw-123'")
    try:
        creds = {"username": "bc_nopriv", "password": "nopriv-pw-123"}
        obs = eventually(
            lambda: (
                (o := observe(target_for(credentials=creds)))
                and (o if o.dr.outcome is not Outcome.AUTH_FAILED else None)
            )  # role replicated
        )
        assert obs.primary.outcome is obs.dr.outcome is Outcome.PERMISSION_DENIED
        assert "permission denied" in obs.primary.error
    finally:
        execute(pair, "primary", "DROP ROLE IF EXISTS bc_nopriv")


def test_missing_heartbeat_table_is_a_note_not_a_blind_side(
    target_for: Callable[..., Any],
) -> None:
    obs = observe(replace(target_for(), heartbeat=HeartbeatConfig("no_such_table")))
    assert obs.primary.outcome is obs.dr.outcome is Outcome.OK
    assert obs.heartbeat_at is None
    assert any("heartbeat table not readable" in n for n in obs.notes)


def test_timeout_fault_is_reported_within_the_timeout(pair: PgPair, target: Any) -> None:
    pair.inject("timeout")
    started = time.monotonic()
    obs = observe(target)
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT_SECONDS + 1.5
    assert obs.dr.outcome is Outcome.TIMEOUT
    assert obs.primary.outcome is Outcome.OK
    assert obs.replication is Replication.UNKNOWN


def test_unreachable_port_is_connection_error(target_for: Callable[..., Any]) -> None:
    obs = observe(target_for(dr_port=1))
    assert obs.dr.outcome is Outcome.CONNECTION_ERROR
    assert obs.primary.outcome is Outcome.OK


def test_heal_restores_streaming_after_several_faults(pair: PgPair, target: Any) -> None:
    for fault in ("pause_replay", "lag", "timeout", "primary_down"):
        pair.inject(fault)
    pair.inject("heal")
    obs = caught_up(target)
    assert obs.replication is Replication.STREAMING
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)


def test_stopped_walreceiver_is_stopped(pair: PgPair, target: Any) -> None:
    conninfo = execute(pair, "standby", "SHOW primary_conninfo")[0]
    execute(pair, "standby", "ALTER SYSTEM SET primary_conninfo = ''")
    execute(pair, "standby", "SELECT pg_reload_conf()")
    try:
        obs = eventually(
            lambda: (o := observe(target)) and (o if o.replication is Replication.STOPPED else None)
        )
        assert any("no WAL receiver" in n for n in obs.notes)
    finally:
        with psycopg.connect(pair.dsn("standby"), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(
                    psycopg.sql.Literal(conninfo)
                )
            )
            conn.execute("SELECT pg_reload_conf()")


def test_promoted_dr_node_is_split_brain(pair: PgPair, target: Any) -> None:
    execute(pair, "standby", "SELECT pg_promote(true, 30)")
    obs = observe(target)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.PRIMARY)
    assert obs.replication is Replication.BROKEN
    assert any("split brain" in n for n in obs.notes)


def test_standby_on_a_diverged_timeline_is_broken(pair: PgPair, target: Any) -> None:
    standby = pair.servers()["standby"]
    execute(pair, "standby", "SELECT pg_promote(true, 30)")
    execute(pair, "standby", "CHECKPOINT")  # the new timeline reaches the control file
    standby.stop("fast")
    write_as_server(standby.data_dir / "standby.signal", "")
    standby.start()
    obs = eventually(
        lambda: (o := observe(target)) and (o if o.replication is Replication.BROKEN else None)
    )
    assert any("timeline mismatch" in n for n in obs.notes)
    assert obs.dr.role is Role.STANDBY


def _switch_over(pair: PgPair) -> None:
    """A planned switchover by hand: DR becomes primary, the primary-site node follows it."""
    nodes = pair.servers()
    primary, standby = nodes["primary"], nodes["standby"]
    replication_pw = json.loads(pair.state_file.read_text())["passwords"]["bc_replication"]
    primary.stop("fast")  # hands all of its WAL to the standby before it exits
    execute(pair, "standby", "SELECT pg_promote(true, 30)")
    write_as_server(primary.data_dir / "standby.signal", "")
    with open(primary.data_dir / "postgresql.auto.conf", "a") as fh:
        fh.write(
            f"primary_conninfo = 'host=127.0.0.1 port={standby.port} user=bc_replication "
            f"password={replication_pw}'\n"
        )
    primary.start()


def test_after_a_switchover_the_dr_side_is_primary_and_heal_switches_back(
    pair: PgPair, target: Any
) -> None:
    _switch_over(pair)
    pair.heartbeat_tick()  # written on the DR node now
    obs = caught_up(target)
    assert (obs.primary.role, obs.dr.role) == (Role.STANDBY, Role.PRIMARY)
    assert obs.replication is Replication.STREAMING, obs.notes
    assert obs.raw["computed"] == {
        "current_primary": "dr",
        "replicating_side": "primary",
        "lag_bytes": 0,
        "lag_seconds": 0.0,
    }
    assert obs.primary_marker == obs.dr.marker and obs.dr_marker == obs.primary.marker
    # Both on the new timeline: the old primary follows the promoted DR node.
    assert obs.primary.details["timeline"] == obs.dr.details["timeline"]
    pair.inject("heal")
    obs = caught_up(target)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)
    assert obs.replication is Replication.STREAMING


def test_error_text_is_sanitized() -> None:
    from connectors.platforms.postgres_read import sanitize

    text = sanitize(
        "could not use postgresql://bc:Pa55word@db:5432/x nor host=db password='a b' "
        "user=bc password=Pa55word\n\tretry",
        ["Pa55word"],
    )
    assert "Pa55word" not in text and "a b" not in text
    assert "postgresql://***" in text and "password=***" in text
    assert "\n" not in text and len(sanitize("x" * 1000, [])) == 300
