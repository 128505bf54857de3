"""The wire-protocol half of the MongoDB simulator: serving, authentication, the hello monitor.

Split from ``mongo_sim`` (which models the set and its faults) so each half stays readable.
``WireServing`` is a mixin: the simulator provides ``_lock``, ``_wake``, ``_members``,
``_servers``, ``_hung``, ``_counter``, ``_parked``, ``_auth``, ``_conn_ids``, ``_next_conn``,
``_commands``, ``_scram``, ``_running``, ``snapshot()`` and ``_execute()`` (the state-changing
and data commands, ``connectors.lab.mongo_exec``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from mockupdb import MockupDB

from connectors.lab import mongo_docs as docs
from connectors.lab.mongo_exec import COMMAND_ROLES
from connectors.lab.mongo_scram import AuthError

log = logging.getLogger(__name__)

# Roles that grant replSetGetStatus / replSetGetConfig (MongoDB's built-in roles).
_MONITOR_ROLES = {"clusterMonitor", "clusterManager", "root"}
# Commands mongod runs without authentication.
_OPEN_COMMANDS = {"hello", "ismaster", "ping", "buildinfo", "saslstart", "saslcontinue"}
_OPEN_COMMANDS |= {"endsessions", "getnonce"}


class WireServing:
    """Answers each member's wire protocol; mixed into ``MongoReplicaSetSimulator``."""

    _lock: threading.RLock
    _wake: threading.Condition
    _members: list[docs.Member]
    _servers: dict[int, MockupDB]
    _hung: set[int]
    _counter: int
    _parked: list[tuple[float, int, int, Any]]  # deadline, member, topology counter, request
    _running: bool
    _auth: Any  # connection -> authenticated user
    _commands: Any
    # from ExecutionCommands: answers reconfig/stepdown/insert/find, None for anything else
    _execute: Any

    def _serve(self, member: docs.Member, port: int | None) -> None:
        server = self._bind(port)
        index = member.index

        def handle(request: Any) -> bool:  # a plain function: mockupdb wants one
            try:
                self._dispatch(index, request)
            except OSError:
                pass  # the client went away mid-reply
            except Exception:
                log.exception("mongo simulator failed on %r", request)
                with contextlib.suppress(Exception):
                    request.replies(docs.command_error(1, "InternalError", "simulator error"))
            return True  # never queue: an unanswered request is a fault, not a default

        server.autoresponds(handle)
        with self._lock:
            # 127.0.0.1 rather than "localhost": mockupdb binds IPv4 only, and the names in the
            # set must be what clients dial.
            member.name = f"127.0.0.1:{server.port}"
            self._servers[index] = server

    @staticmethod
    def _bind(port: int | None) -> MockupDB:
        if port:
            try:
                server = MockupDB(port=port)
                server.run()
                return server
            except OSError:
                log.warning("port %s is taken; the member moves to a new port", port)
        server = MockupDB()
        server.run()
        return server

    def _record(self, index: int, request: Any, name: str) -> None:
        doc = {k: v for k, v in request.doc.items() if k not in ("lsid", "$clusterTime")}
        for key in ("payload", "speculativeAuthenticate"):
            if key in doc:
                doc[key] = "<redacted>"
        with self._lock:
            user = self._auth.get(request._client)  # who sent it (None before authentication)
            self._commands.append(
                {"at": time.time(), "member": index, "command": name, "user": user, "doc": doc}
            )

    def _dispatch(self, index: int, request: Any) -> None:
        name = request.command_name or ""
        self._record(index, request, name)
        lname = name.lower()
        with self._lock:
            if index in self._hung:
                return  # accepts, reads, never answers
            sock = request._client
            if sock not in self._conn_ids:
                self._conn_ids[sock] = next(self._next_conn)
            user = self._auth.get(sock)
        if lname in ("hello", "ismaster"):
            self._hello(index, request, lname == "ismaster")
            return
        needed = COMMAND_ROLES.get(lname, _MONITOR_ROLES)
        if lname not in _OPEN_COMMANDS and not self._authorized(user, needed):
            request.replies(self._unauthorized(user, name, request.doc.get(name)))
            return
        if lname == "saslstart":
            self._sasl(request, lambda: self._scram.start(request["mechanism"], request["payload"]))
        elif lname == "saslcontinue":
            self._sasl(
                request, lambda: self._scram.proceed(request["conversationId"], request["payload"])
            )
        elif lname in ("ping", "endsessions"):
            request.replies({"ok": 1.0})
        elif lname == "buildinfo":
            request.replies(docs.build_info())
        elif lname == "replsetgetstatus":
            snap = self.snapshot()
            request.replies(docs.repl_set_get_status(snap, snap.members[index]))
        elif lname == "replsetgetconfig":
            request.replies(docs.repl_set_get_config(self.snapshot()))
        elif (reply := self._execute(index, lname, request)) is not None:
            request.replies(reply)
        else:
            request.replies(docs.command_error(59, "CommandNotFound", f"no such command: '{name}'"))

    def _authorized(self, user: str | None, needed: set[str]) -> bool:
        return bool(user) and bool(needed & set(self._scram.roles(user)))

    @staticmethod
    def _unauthorized(user: str | None, name: str, value: Any = 1) -> dict[str, Any]:
        if not user:
            return docs.command_error(13, "Unauthorized", f"command {name} requires authentication")
        shown = value if isinstance(value, int | float | str) else "..."
        return docs.command_error(
            13, "Unauthorized", f"not authorized on admin to execute command {{ {name}: {shown} }}"
        )

    def _sasl(self, request: Any, step: Any) -> None:
        try:
            result = step()
        except AuthError as exc:
            request.replies(docs.command_error(18, "AuthenticationFailed", str(exc)))
            return
        reply, user = result if isinstance(result, tuple) else (result, None)
        if user:
            with self._lock:
                self._auth[request._client] = user
        request.replies({**reply, "ok": 1.0})

    def _hello(self, index: int, request: Any, legacy: bool) -> None:
        version = request.doc.get("topologyVersion")
        if version is not None and "maxAwaitTimeMS" in request.doc:
            # Streaming monitor: a real server holds the reply until the topology changes or
            # maxAwaitTimeMS passes. Answering at once would make pymongo spin.
            with self._lock:
                member = self._members[index]
                same = version.get("processId") == member.process_id
                if same and version.get("counter") == self._counter:
                    deadline = time.time() + request["maxAwaitTimeMS"] / 1000
                    self._parked.append((deadline, index, self._counter, request))
                    self._wake.notify_all()
                    return
        request.replies(self._hello_doc(index, request, legacy))

    def _hello_doc(self, index: int, request: Any, legacy: bool) -> dict[str, Any]:
        snap = self.snapshot()
        with self._lock:
            snap.connection_ids[index] = self._conn_ids.get(request._client, 1)
        doc = docs.hello(snap, snap.members[index], legacy, bool(request.doc.get("helloOk")))
        mechs_for = request.doc.get("saslSupportedMechs")
        if mechs_for:
            mechs = self._scram.mechanisms_for(mechs_for)
            if mechs:
                doc["saslSupportedMechs"] = mechs
        speculative = request.doc.get("speculativeAuthenticate")
        if speculative and speculative.get("saslStart"):
            # On failure mongod omits the field; the client then runs saslStart and fails there.
            with contextlib.suppress(AuthError):
                doc["speculativeAuthenticate"] = self._scram.start(
                    speculative["mechanism"], speculative["payload"]
                )
        return doc

    def _answer_parked(self) -> None:
        while True:
            due: list[tuple[int, Any]] = []
            with self._lock:
                if not self._running:
                    return
                now = time.time()
                keep = []
                for deadline, index, counter, request in self._parked:
                    if index in self._hung or index not in self._servers:
                        continue  # a hung or stopped member never answers
                    if deadline <= now or counter != self._counter:
                        due.append((index, request))
                    else:
                        keep.append((deadline, index, counter, request))
                self._parked = keep
                if not due:
                    next_deadline = min((p[0] for p in keep), default=now + 1)
                    self._wake.wait(timeout=max(0.05, min(1.0, next_deadline - now)))
                    continue
            for index, request in due:
                with contextlib.suppress(Exception):  # the client may have closed
                    request.replies(self._hello_doc(index, request, False))
