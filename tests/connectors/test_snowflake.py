"""SnowflakeConnector against the scripted lab connection (``connectors.lab.snowflake_sim``).

No Snowflake runs locally. The double is a DB-API 2 connection that returns rows shaped like
the documented output of ``SHOW FAILOVER GROUPS`` (lower-case columns, ``is_primary`` as text,
TIMESTAMP_LTZ as aware datetimes) and of ``REPLICATION_GROUP_REFRESH_HISTORY`` (upper-case
columns, VARIANT as JSON text), and raises the real ``snowflake.connector.errors`` classes with
connector 5.x errno/SQLSTATE values. It does not parse SQL beyond those statements.
"""

from __future__ import annotations

import functools
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.test import override_settings
from snowflake.connector.errors import DatabaseError, OperationalError, ProgrammingError

from connectors.contract import CAPABILITY_NAMES, Outcome, Replication, Role, Target
from connectors.lab import snowflake_sim
from connectors.lab.snowflake_sql import HISTORY_COLUMNS, SHOW_COLUMNS
from connectors.platforms.snowflake import SnowflakeConnector, classify


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError("test exceeded 30 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def lab(tmp_path) -> snowflake_sim.SnowflakeLab:
    lab = snowflake_sim.SnowflakeLab(tmp_path / "snowflake.json", refresh_interval=60)
    lab.start()
    return lab


@pytest.fixture
def info(lab) -> dict[str, Any]:
    return lab.connection_info()


@pytest.fixture
def factory(lab) -> Any:
    return functools.partial(snowflake_sim.connect, state_path=lab.state.path)


def _target(info: dict[str, Any], creds: dict[str, str] | None = None, timeout: float = 2.0):
    creds = info["credentials"]["monitor"] if creds is None else creds
    return Target(
        name="analytics-snowflake",
        platform="snowflake",
        connection=info["connection"],
        credentials=lambda purpose: creds,
        timeout_seconds=timeout,
    )


def test_rows_are_shaped_like_the_documented_output(info, factory) -> None:
    creds = info["credentials"]["monitor"]
    conn = factory(account=info["connection"]["dr_account"], **_login(creds))
    cursor = conn.cursor()
    cursor.execute("SHOW FAILOVER GROUPS")
    assert [d[0] for d in cursor.description] == [name for name, _ in SHOW_COLUMNS]
    rows = cursor.fetchall()
    assert {row[7] for row in rows} == {"true", "false"}  # is_primary, as text
    assert isinstance(rows[0][2], datetime) and rows[0][2].tzinfo is not None
    cursor.execute(
        "SELECT * FROM TABLE(INFORMATION_SCHEMA.REPLICATION_GROUP_REFRESH_HISTORY('BC_FAILOVER'))"
    )
    assert [d[0] for d in cursor.description] == [name for name, _ in HISTORY_COLUMNS]
    (job,) = cursor.fetchall()
    assert job[0] == "COMPLETED" and job[4].startswith("{")  # VARIANT arrives as JSON text
    conn.close()


def _login(creds: dict[str, str]) -> dict[str, str]:
    return {"user": creds["username"], "password": creds["password"]}


def test_capabilities_name_all_seven() -> None:
    assert set(SnowflakeConnector().capabilities()) == set(CAPABILITY_NAMES)


def test_healthy_group_lag_is_age_of_the_last_snapshot(info, factory) -> None:
    obs = SnowflakeConnector(factory).observe(_target(info))
    assert (obs.primary.outcome, obs.dr.outcome) == (Outcome.OK, Outcome.OK)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)
    assert obs.replication == Replication.STREAMING
    assert snowflake_sim.REFRESH_SECONDS <= obs.lag_seconds < snowflake_sim.REFRESH_SECONDS + 2
    assert obs.marker_available and datetime.fromisoformat(obs.dr_marker).tzinfo is not None
    assert obs.heartbeat_at is None and obs.lag_bytes is None
    assert obs.dr.details["replication_schedule"] == "1 MINUTE"


def test_lag_fault_stops_refreshes_and_lag_grows(lab, info, factory) -> None:
    connector = SnowflakeConnector(factory)
    lab.inject("lag")
    first = connector.observe(_target(info))
    assert lab.tick(time.time() + 3600) is False  # due, but no refresh happens
    time.sleep(1.1)
    second = connector.observe(_target(info))
    assert second.lag_seconds >= first.lag_seconds + 1.0
    assert second.replication == Replication.STREAMING  # schedule still STARTED
    lab.inject("heal")
    assert lab.tick(time.time() + 3600) is True


def test_suspended_secondary_is_paused(lab, info, factory) -> None:
    lab.inject("pause")
    obs = SnowflakeConnector(factory).observe(_target(info))
    assert obs.replication == Replication.PAUSED
    assert obs.dr.details["secondary_state"] == "SUSPENDED" and obs.dr.healthy is False


def test_standby_down_is_a_dr_connection_error(lab, info, factory) -> None:
    lab.inject("standby_down")
    obs = SnowflakeConnector(factory).observe(_target(info))
    assert obs.dr.outcome == Outcome.CONNECTION_ERROR
    assert obs.primary.outcome == Outcome.OK and obs.primary.role == Role.PRIMARY
    assert obs.replication == Replication.UNKNOWN and obs.lag_seconds is None


def test_primary_down_still_measures_lag_from_the_dr_account(lab, info, factory) -> None:
    lab.inject("primary_down")
    obs = SnowflakeConnector(factory).observe(_target(info))
    assert obs.primary.outcome == Outcome.CONNECTION_ERROR
    assert obs.dr.outcome == Outcome.OK and obs.lag_seconds is not None
    assert obs.replication == Replication.UNKNOWN


def test_timeout_raises_the_connectors_timeout_error_in_time(lab, info, factory) -> None:
    lab.inject("timeout")
    started = time.monotonic()
    obs = SnowflakeConnector(factory).observe(_target(info, timeout=1.0))
    assert obs.dr.outcome == Outcome.TIMEOUT and "HYT00" in obs.dr.error
    assert time.monotonic() - started < 2.0


def test_wrong_password_is_auth_failed(info, factory) -> None:
    creds = {"username": "BC_MONITOR", "password": "not-the-password"}
    obs = SnowflakeConnector(factory).observe(_target(info, creds))
    assert obs.primary.outcome == obs.dr.outcome == Outcome.AUTH_FAILED
    assert "not-the-password" not in repr(obs)


def test_role_without_privilege_does_not_see_the_group(lab, info, factory) -> None:
    lab.add_user("NOPRIV", "nopriv-pw", ())
    obs = SnowflakeConnector(factory).observe(
        _target(info, {"username": "NOPRIV", "password": "nopriv-pw"})
    )
    assert obs.dr.outcome == Outcome.ERROR and "MONITOR" in obs.dr.error


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (DatabaseError(msg="Incorrect username or password was specified.", errno=390100), "auth"),
        (DatabaseError(msg="Failed to connect to DB", errno=250001, sqlstate="08001"), "auth"),
        (OperationalError(msg="Could not connect to Snowflake backend", errno=250001), "conn"),
        (OperationalError(msg="Connection refused (os error 111)", errno=4), "conn"),
        (OperationalError(msg="Timeout", errno=14, sqlstate="HYT00"), "timeout"),
        (OperationalError(msg="Login request timed out"), "timeout"),
        (ProgrammingError(msg="Insufficient privileges to operate on group", errno=3001), "denied"),
        (ProgrammingError(msg="syntax error line 1", errno=1003), "error"),
    ],
)
def test_driver_errors_map_to_outcomes(info, factory, error, outcome) -> None:
    expected = {
        "auth": Outcome.AUTH_FAILED,
        "conn": Outcome.CONNECTION_ERROR,
        "timeout": Outcome.TIMEOUT,
        "denied": Outcome.PERMISSION_DENIED,
        "error": Outcome.ERROR,
    }[outcome]
    assert classify(error) == expected

    def failing(**kwargs: Any) -> Any:  # the DR account raises it, the primary answers
        if kwargs["account"] == info["connection"]["dr_account"]:
            raise error
        return factory(**kwargs)

    obs = SnowflakeConnector(failing).observe(_target(info))
    assert obs.dr.outcome == expected and obs.primary.outcome == Outcome.OK


def test_insufficient_privileges_on_the_history_query_is_permission_denied(info, factory) -> None:
    def refusing_history(**kwargs: Any) -> Any:
        conn = factory(**kwargs)
        cursor_fn = conn.cursor

        def cursor() -> Any:
            cur = cursor_fn()
            execute = cur.execute

            def guarded(sql: str, params: Any = None) -> Any:
                if "REFRESH_HISTORY" in sql:
                    raise ProgrammingError(
                        msg="SQL access control error: Insufficient privileges", errno=3001
                    )
                return execute(sql, params)

            cur.execute = guarded
            return cur

        conn.cursor = cursor
        return conn

    obs = SnowflakeConnector(refusing_history).observe(_target(info))
    assert obs.dr.outcome == Outcome.PERMISSION_DENIED and obs.primary.outcome == Outcome.OK


def test_the_connector_passes_timeouts_and_credentials_to_the_factory(info, factory) -> None:
    seen: list[dict[str, Any]] = []

    def spy(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return factory(**kwargs)

    SnowflakeConnector(spy).observe(_target(info, timeout=2.5))
    assert {k["account"] for k in seen} == {
        info["connection"]["primary_account"],
        info["connection"]["dr_account"],
    }
    assert all(k["login_timeout"] == 3 and k["user"] == "BC_MONITOR" for k in seen)


def test_setting_names_the_factory_read_at_observe_time(lab, info, monkeypatch) -> None:
    monkeypatch.setenv("BC_LAB_DIR", str(lab.state.path.parent))
    connector = SnowflakeConnector()
    with override_settings(BC_SNOWFLAKE_CONNECTION_FACTORY="connectors.lab.snowflake_sim:connect"):
        obs = connector.observe(_target(info))
    assert obs.replication == Replication.STREAMING


def test_every_statement_is_recorded(lab, info, factory) -> None:
    SnowflakeConnector(factory).observe(_target(info))
    statements = [s["sql"] for s in lab.received_statements()]
    assert statements.count("SHOW FAILOVER GROUPS") == 2
    assert any("REPLICATION_GROUP_REFRESH_HISTORY('BC_FAILOVER')" in s for s in statements)
    assert all(info["credentials"]["monitor"]["password"] not in str(s) for s in statements)
