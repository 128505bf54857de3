"""The TDS side of the SQL Server lab double: one scripted server per availability replica.

Built on pysqlbridge's protocol layer (``pysqlbridge.tds.connection.Connection``: PRELOGIN,
the TLS-wrapped LOGIN7, SQL logins refused with error 18456, batches, RPCs, TDS errors) and its
SQL engine (``pysqlbridge.catalog.Catalog``: joins, WHERE, CAST, SERVERPROPERTY, @@SERVERNAME),
so pyodbc through FreeTDS talks to it as to a real instance. This module replaces
``pysqlbridge.server.start_background``'s socket loop with its own for three reasons:

- the query handler must know which SQL login is asking (monitor or execute): pysqlbridge only
  names Windows-authenticated users, so ``_SimConnection`` names SQL logins as well;
- a replica can be made to hang (accept TCP, never answer) and to drop every open session when
  it goes down, which a real outage does and pysqlbridge's loop cannot;
- each replica answers to its own name (``@@SERVERNAME``, the server in error messages).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pysqlbridge import predicate
from pysqlbridge.catalog import Catalog
from pysqlbridge.certificate import Certificate
from pysqlbridge.logins import LoginStore
from pysqlbridge.source import Table
from pysqlbridge.tds.connection import Connection, ConnectionState
from pysqlbridge.tds.result import Query, QueryResult

log = logging.getLogger(__name__)

# The simulated instances run Always On; pysqlbridge answers SERVERPROPERTY from one
# process-wide table, which says 0 by default.
predicate.SERVER_PROPERTIES["ISHADRENABLED"] = 1
# The simulated instances run in UTC (their DMV times are naive UTC): GETDATE()/SYSDATETIME()
# must be on the same clock as last_commit_time, as they are on a real server, whatever the
# time zone of the machine running the lab.
for _local_now in ("GETDATE", "CURRENT_TIMESTAMP", "SYSDATETIME"):
    predicate.CONTEXT_FUNCTIONS[_local_now] = lambda about, *rest: predicate._utc_now(about)

Answer = Callable[[str, Query], QueryResult]
# pysqlbridge's parser keeps a module-level global while it scans a statement
# (``sql._find_order_by`` sets ``_CLAUSE_ENDS``): two replicas parsing at once could corrupt each
# other's parse (seen as "cannot read the ON condition: unexpected 'LEFT'"), which no real
# server does. One statement at a time in the engine; a batch costs 15-30 ms.
_ENGINE = threading.RLock()


class _SimConnection(Connection):
    """pysqlbridge's connection, naming SQL-authenticated logins too (``session["login"]``)."""

    @property
    def username(self) -> str | None:
        login = self.login
        if login is not None and not login.uses_integrated_auth:
            return login.user_name
        return super().username


class AgCatalog(Catalog):
    """pysqlbridge's SQL engine with the AG views of the batch being answered.

    The tables come from one snapshot per batch (set with ``serving``), so a join across views
    and the statements of one batch all see the same instant, as they would on a real server.
    """

    def __init__(self) -> None:
        super().__init__()
        self._current = threading.local()

    @contextlib.contextmanager
    def serving(self, tables: dict[str, Table]) -> Iterator[None]:
        self._current.tables = tables
        try:
            yield
        finally:
            self._current.tables = {}

    def answer(self, request: Query | str, **kwargs: Any) -> QueryResult:
        with _ENGINE:
            return super().answer(request, **kwargs)

    def get(self, name: str, schema: str | None = None, parameters: dict | None = None) -> Table:
        tables: dict[str, Table] = getattr(self._current, "tables", {})
        key = name.lower()
        if schema and schema.lower() == "sys" and key in tables:
            return tables[key]
        if (schema is None or schema.lower() == "dbo") and f"dbo.{key}" in tables:
            return tables[f"dbo.{key}"]
        return super().get(name, schema, parameters)


class ReplicaServer(socketserver.ThreadingTCPServer):
    """One replica's listener on 127.0.0.1. ``is_hung()`` true: accept, read, never answer."""

    allow_reuse_address = True  # a replica restarted after an outage gets its port back
    daemon_threads = True

    def __init__(
        self,
        port: int,
        *,
        name: str,
        certificate: Certificate,
        logins: LoginStore,
        answer: Answer,
        is_hung: Callable[[], bool],
    ) -> None:
        self.name = name
        self.certificate = certificate
        self.logins = logins
        self.answer = answer
        self.is_hung = is_hung
        self.closing = threading.Event()
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _ReplicaHandler)
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"mssql-sim-{name}",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._clients_lock:
            if add:
                self._clients.add(sock)
            else:
                self._clients.discard(sock)

    def stop(self) -> None:
        """Stop listening and drop every open session, as a stopped instance does."""
        self.closing.set()
        self.shutdown()
        self.server_close()
        with self._clients_lock:
            clients = list(self._clients)
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)


class _ReplicaHandler(socketserver.BaseRequestHandler):
    server: ReplicaServer

    def handle(self) -> None:
        server, sock = self.server, self.request
        server.track(sock, True)
        connection = _SimConnection(
            server.certificate,
            server_name=server.name,
            reached_at=server.name,  # what @@SERVERNAME and SERVERPROPERTY('ServerName') say
            query_handler=lambda query: server.answer(server.name, query),
            logins=server.logins,
        )
        # Short reads so that a hang that heals, or a replica that stops, is noticed quickly.
        sock.settimeout(0.2)
        hung = False
        try:
            while not server.closing.is_set():
                hung = hung or server.is_hung()
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    if hung and not server.is_hung():
                        return  # healed: a session that saw the hang is dropped, not resumed
                    continue
                if not data:
                    return
                if hung:
                    continue  # swallowed: a hung server never answers
                # Writes may block on a slow reader: give them longer than the read poll.
                sock.settimeout(10)
                for response in connection.receive(data):
                    sock.sendall(response)
                sock.settimeout(0.2)
                if connection.state is ConnectionState.FAILED:
                    return  # e.g. a refused login, already answered with error 18456
        except Exception as exc:  # a client that vanished or sent garbage ends only its session
            log.debug("%s: session ended: %s: %s", server.name, type(exc).__name__, exc)
        finally:
            server.track(sock, False)
            with contextlib.suppress(OSError):
                sock.close()


def serve_replica(port: int | None, **kwargs: Any) -> ReplicaServer:
    """Start a replica on ``port`` (a new free port when it is None or taken)."""
    if port:
        try:
            return ReplicaServer(port, **kwargs)
        except OSError:
            log.warning("port %s is taken; %s gets a new one", port, kwargs.get("name"))
    return ReplicaServer(0, **kwargs)
