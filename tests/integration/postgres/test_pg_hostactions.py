"""Host actions (connectors/platforms/postgres_actions.py): templates, no shell, credentials in the
environment only, scrubbed output, timeouts that stop the whole process tree; and the lab's
templates as ``PgPair.up()`` publishes them."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.platforms import postgres_actions as actions
from inventory.connection_settings import validate

pytestmark = pytest.mark.integration

CREDS = {"username": "bc_exec", "password": "s3cret-Execute-Pw"}
PY = sys.executable


def conn(**host_actions: Any) -> dict[str, Any]:
    return {"dbname": "postgres", "sslmode": "disable", "host_actions": host_actions}


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (None, "no 'rejoin' host action is configured"),
        ("pg_rewind -D /data", "not a shell string"),
        ([], "non-empty list of strings"),
        (["ok", 3], "non-empty list of strings"),
        (["rejoin", "{password}"], "unknown placeholder {password}"),
        ({"argv": ["x"], "timeout_seconds": -1}, "timeout_seconds must be positive"),
    ],
)
def test_unusable_templates_are_named(template: Any, problem: str) -> None:
    settings = conn() if template is None else conn(rejoin=template)
    assert problem in actions.problem(settings, "rejoin")
    with pytest.raises(actions.HostActionError):
        actions.spec(settings, "rejoin")


def test_template_forms() -> None:
    plain = actions.spec(conn(stop=["pg_ctl", "-D", "/d/{node}", "stop"]), "stop")
    assert plain.timeout_seconds == actions.DEFAULT_TIMEOUT_SECONDS
    timed = actions.spec(conn(stop={"argv": ["pg_ctl"], "timeout_seconds": 12}), "stop")
    assert timed.timeout_seconds == 12
    assert actions.render(plain, {"node": "dr"}) == ["pg_ctl", "-D", "/d/dr", "stop"]


def test_runs_without_a_shell_with_credentials_in_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("BC_VAULT_TOKEN", "vault-token-of-the-worker")
    monkeypatch.setenv("DATABASE_URL", "postgres://store:storepw@db/bc")
    script = (
        "import os, sys; print('argv', sys.argv[1:]); "
        "print('user', os.environ.get('PGUSER')); "
        "print('pw', os.environ.get('PGPASSWORD')); "
        "print('dsn postgresql://bc_exec:' + os.environ['PGPASSWORD'] + '@h/db'); "
        "print('vault', os.environ.get('BC_VAULT_TOKEN')); "
        "print('store', os.environ.get('DATABASE_URL'))"
    )
    settings = conn(rejoin=[PY, "-c", script, "{host}", "{new_primary_port}"])
    result = actions.run(
        settings, "rejoin", {"host": "db1; rm -rf /", "new_primary_port": 5433}, CREDS
    )
    assert result.ok and result.returncode == 0
    # One argument, not a command: no shell ever saw it.
    assert "argv ['db1; rm -rf /', '5433']" in result.output
    # The account reached the command (PGUSER/PGPASSWORD) but not the record: every credential
    # value is scrubbed, as the runner does with what StepCredentials handed out.
    assert "user ***" in result.output and "pw ***" in result.output
    assert CREDS["password"] not in result.output
    assert "postgresql://***" in result.output
    # The worker's own secrets are not handed to host actions.
    assert "vault None" in result.output and "store None" in result.output
    assert CREDS["password"] not in result.command


def test_failure_keeps_the_tail_of_the_output() -> None:
    script = "import sys; [print(f'line {{i}}') for i in range(100)]; sys.exit(3)"
    result = actions.run(conn(rejoin=[PY, "-c", script]), "rejoin", {}, CREDS)
    assert not result.ok and result.returncode == 3
    assert "line 99" in result.output and "line 0 " not in result.output
    assert result.summary().startswith("host action rejoin (exit 3,")


def test_missing_program_is_a_failed_action() -> None:
    result = actions.run(conn(rejoin=["/nonexistent/rejoin"]), "rejoin", {}, CREDS)
    assert not result.ok and "No such file" in result.output


def test_timeout_stops_the_whole_process_tree(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time; "
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)"
    )
    began = time.monotonic()
    result = actions.run(
        conn(rejoin={"argv": [PY, "-c", script], "timeout_seconds": 60}),
        "rejoin",
        {},
        CREDS,
        timeout_seconds=2,
    )
    assert time.monotonic() - began < 15
    assert not result.ok and result.returncode is None
    assert "timed out" in result.summary()
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)  # the grandchild went with the group


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its (dead) parent's reaper counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def test_lab_publishes_usable_host_actions(pg_lab: dict[str, Any]) -> None:
    """The demo's resource gets these templates: they validate as connection settings and every
    one is a well-formed argv template."""
    connection = pg_lab["connection"]
    assert validate("postgres", connection) == {}
    names = set(connection["host_actions"])
    assert names >= {"rejoin", "stop", "start", "restart"}
    for name in names:
        assert actions.problem(connection, name) == ""
    rendered = actions.render(actions.spec(connection, "stop"), {"node": "dr"})
    assert Path(rendered[rendered.index("-D") + 1]).resolve().name == "standby"
