"""One lab PostgreSQL server (a data directory and a port) driven through the server binaries.

PostgreSQL refuses to run as root, so when this Python runs as root every binary (initdb, pg_ctl,
pg_basebackup) is started as the ordinary ``postgres`` user; as any other user they run as that
user. Only binaries run as ``postgres``: the Python interpreter is never asked to (a Python under
root's home is not executable by that user). The port and the cluster name are passed on the
``pg_ctl -o`` command line rather than written to postgresql.conf, because ``pg_basebackup`` and
``pg_rewind`` copy the configuration files from the source node.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_BIN = Path(os.environ.get("BC_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"
NODES = ("primary", "standby")
# Host actions name nodes by configured site; the lab's node at the DR site is "standby".
SITE_NODES = {"primary": "primary", "dr": "standby", "standby": "standby"}
BY_SITE = "by-site"  # data_root/by-site/<site> -> ../<node>, for templates that take {node}
STATE_FILE, LOCK_FILE = "pair.json", "pair.lock"


class PgLabError(RuntimeError):
    """The lab pair could not do what was asked; the message says why (with the server log)."""


def _server_ids() -> tuple[int, int] | None:
    """(uid, gid) to run the binaries as, or None to run them as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PgLabError(f"running as root, but there is no {SERVER_USER!r} user") from None
    return entry.pw_uid, entry.pw_gid


def run(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a server binary (``args[0]`` names it) as the server user; raise with its stderr."""
    ids = _server_ids()
    full_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", **(env or {})}
    kwargs: dict = {}
    if ids is not None:
        kwargs = {"user": ids[0], "group": ids[1], "extra_groups": []}
    try:
        # stdout/stderr go to pipes, which is safe only because the servers pg_ctl starts write
        # to their own log file (-l) and do not inherit the pipes.
        done = subprocess.run(
            [str(PG_BIN / args[0]), *args[1:]],
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except subprocess.TimeoutExpired:
        raise PgLabError(f"{args[0]} did not finish in {timeout:g} s") from None
    except FileNotFoundError:
        raise PgLabError(f"{PG_BIN / args[0]} not found (set BC_PG_BIN)") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-6:]
        raise PgLabError(f"{args[0]} failed ({done.returncode}): " + " | ".join(tail))
    return done


def server_can_reach(path: Path) -> bool:
    """Whether the server user can traverse ``path`` (it may sit under a 0700 directory)."""
    if _server_ids() is None:
        return True
    probe = subprocess.run(
        ["/usr/bin/test", "-x", str(path)], user=SERVER_USER, extra_groups=[], check=False
    )
    return probe.returncode == 0


def give_to_server(path: Path) -> None:
    """Create ``path`` (mode 0700) owned by the server user."""
    path.mkdir(parents=True, exist_ok=True)
    ids = _server_ids()
    if ids is not None:
        os.chown(path, *ids)
    path.chmod(0o700)


def write_as_server(path: Path, text: str) -> None:
    """Write a file that the server user must read (and own): mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    ids = _server_ids()
    if ids is not None:
        os.chown(path, *ids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else (we are not root)
        return True
    return True


@dataclass
class PgServer:
    """One node of the pair. ``label`` is the configured role ("primary" or "standby")."""

    label: str
    data_dir: Path
    port: int
    cluster_name: str

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.label}.log"

    def exists(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def pid(self) -> int | None:
        """The postmaster's pid when it is running, from postmaster.pid."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def frozen(self) -> bool:
        """Stopped with SIGSTOP (the ``timeout`` fault): state ``T`` in /proc/PID/stat."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[0] in ("T", "t")

    def freeze(self) -> None:
        pid = self.pid()
        if pid is None:
            raise PgLabError(f"{self.label} is not running")
        os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)

    def initdb(self, superuser: str, password: str) -> None:
        give_to_server(self.data_dir.parent)
        pwfile = self.data_dir.parent / f".{self.label}.pw"
        write_as_server(pwfile, password + "\n")
        try:
            run(
                [
                    "initdb",
                    *("-D", str(self.data_dir), "-U", superuser, f"--pwfile={pwfile}"),
                    *("--auth-local=trust", "--auth-host=scram-sha-256"),
                    *("-E", "UTF8", "--locale=C.UTF-8", "--no-sync"),
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> None:
        if self.running():
            self.thaw()
            return
        options = f"-p {self.port} -c cluster_name={self.cluster_name}"
        try:
            run(
                [
                    "pg_ctl",
                    *("-D", str(self.data_dir), "-l", str(self.log_file)),
                    *("-o", options, "-w", "-t", "60", "start"),
                ],
                timeout=90,
            )
        except PgLabError as exc:
            raise PgLabError(f"{self.label}: {exc}; log: {self.log_tail()}") from None

    def stop(self, mode: str = "fast") -> None:
        """Stop (``fast`` or ``immediate``); a frozen postmaster is woken first, or the stop
        signal would wait for SIGCONT."""
        if not self.running():
            return
        self.thaw()
        run(["pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop"], timeout=90)

    def wait_stopped(self, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)

    def remove(self) -> None:
        with contextlib.suppress(PgLabError):
            self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_file.read_text().strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- the pair's state file and lock (kept free of psycopg: host actions import only this) ------


def node_servers(state: Mapping[str, Any]) -> dict[str, PgServer]:
    root = Path(state["data_root"])
    return {n: PgServer(n, root / n, int(state["ports"][n]), f"{state['name']}-{n}") for n in NODES}


def read_state(base_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(base_dir) / STATE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def write_state(base_dir: Path, state: Mapping[str, Any]) -> None:
    """Atomically, mode 0600 (it holds the lab's generated passwords)."""
    base = Path(base_dir)
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / (STATE_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
    tmp.replace(base / STATE_FILE)


@contextlib.contextmanager
def pair_lock(base_dir: Path) -> Iterator[None]:
    """Serialises changes to one pair across processes (PgPair, host actions)."""
    base = Path(base_dir)
    base.mkdir(parents=True, exist_ok=True)
    with open(base / LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def link_sites(data_root: Path) -> None:
    """``data_root/by-site/{primary,dr}`` -> the node directories (readable by the server user)."""
    by_site = Path(data_root) / BY_SITE
    by_site.mkdir(exist_ok=True)
    by_site.chmod(0o755)
    ids = _server_ids()
    if ids is not None:
        os.chown(by_site, *ids)
    for site in ("primary", "dr"):
        link = by_site / site
        if not link.is_symlink():
            link.symlink_to(Path("..") / SITE_NODES[site])
