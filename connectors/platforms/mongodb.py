"""MongoDB replica sets: read-only observation with pymongo (``hello`` + ``replSetGetStatus``).

Each configured member (the one at the primary site and the one at the DR site) is reached
separately with ``directConnection=True``: a replica-set connection would hide which side is
unreachable behind server selection. Both sides are looked at in parallel, so one side that hangs
costs at most ``timeout_seconds`` for the whole observation. ``replSetGetStatus`` needs the
``clusterMonitor`` role; nothing here writes. The field meanings are in docs/connectors/mongodb.md.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId, Timestamp
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from connectors.contract import (
    Capability,
    Connector,
    Observation,
    Outcome,
    PlanStep,
    Replication,
    Role,
    SideObservation,
    Support,
    Target,
)
from inventory.connection_settings import with_defaults

PRIMARY_STATE, SECONDARY_STATE = 1, 2
# Capabilities cannot check the execute account's roles without fetching its secret (only a
# running step may, invariant 6): they stay conditional and say what they need. A missing role
# fails the first state-changing step with code 13, before anything changed.
_STEPDOWN = (
    "replSetReconfig and replSetStepDown need clusterManager on the execute account; "
    "the target member must be a healthy secondary within the lag threshold"
)
_FORCE = (
    "forced replSetReconfig (dangerous: the old primary's unreplicated writes are rolled back) "
    "needs clusterManager on the execute account; refused while the old primary takes writes "
    "unless the operator overrides"
)
_DRILL = (
    "writes a marker into bcservice.bc_drill on the primary and reads it on the DR member: "
    "the execute account needs readWrite on the bcservice database"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CODEC = CodecOptions(tz_aware=True)


@dataclass
class _Side:
    obs: SideObservation
    hello: dict[str, Any] | None = None
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The member's name in the set configuration (``me``), else the configured endpoint."""
        return (self.hello or {}).get("me") or self.obs.endpoint


def marker(optime: dict[str, Any] | None) -> str | None:
    """``ts_seconds:increment/term``, e.g. ``1700000000:5/3``; None for a missing/empty optime."""
    if not optime or not isinstance(optime.get("ts"), Timestamp) or optime["ts"].time == 0:
        return None
    ts = optime["ts"]
    return f"{ts.time}:{ts.inc}/{int(optime.get('t', -1))}"


def jsonable(value: Any) -> Any:
    """BSON values -> JSON for ``raw`` (Timestamp as marker text, dates as ISO 8601)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if not str(k).startswith("$")}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Timestamp):
        return f"{value.time}:{value.inc}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _split(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        return endpoint.strip("[]"), 27017
    return host.strip("[]"), int(port)


class MongoConnector(Connector):
    platform = "mongodb"

    def capabilities(self, target: Target | None = None) -> dict[str, Capability]:
        conditional = Support.CONDITIONAL
        return {
            "monitor": Capability(Support.YES),
            "replication_marker": Capability(Support.YES),
            "heartbeat": Capability(
                Support.NO,
                "no heartbeat table: an idle primary writes a no-op to the oplog every 10 s, "
                "so the optime marker already shows that writes flow",
            ),
            "switchover": Capability(conditional, _STEPDOWN),
            "failover": Capability(conditional, _FORCE),
            "failback": Capability(conditional, _STEPDOWN),
            "drill": Capability(conditional, _DRILL),
        }

    def plan(self, kind: str, target: Target) -> list[PlanStep]:
        """Steps for switchover, failback, failover and drill (``mongodb_plan``)."""
        from connectors.platforms import mongodb_plan  # the plan imports this module's helpers

        return mongodb_plan.build(self, kind, target)

    def observe(self, target: Target) -> Observation:
        observed_at = datetime.now(UTC)
        conn = with_defaults(self.platform, dict(target.connection))
        endpoints = {"primary": conn.get("primary_member") or "", "dr": conn.get("dr_member") or ""}
        # A secret that cannot be resolved is not a target problem: SecretError propagates and
        # the collection records it as such.
        creds = dict(target.credentials("monitor") or {})
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mongo-observe") as pool:
            futures = {
                site: pool.submit(self._observe_side, site, ep, conn, creds, target.timeout_seconds)
                for site, ep in endpoints.items()
            }
            sides = {site: future.result() for site, future in futures.items()}
        return self._assemble(observed_at, conn, sides["primary"], sides["dr"])

    # -- one side ----------------------------------------------------------------------------

    def _observe_side(
        self, site: str, endpoint: str, conn: dict[str, Any], creds: dict[str, str], timeout: float
    ) -> _Side:
        side = _Side(SideObservation(site=site, endpoint=endpoint))
        if not endpoint:
            side.obs.outcome, side.obs.error = Outcome.NOT_CONFIGURED, f"no {site}_member set"
            return side
        host, port = _split(endpoint)
        # A refused port is reported at once; pymongo would only say so after server selection
        # has waited the whole timeout.
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except TimeoutError:
            side.obs.outcome, side.obs.error = Outcome.TIMEOUT, f"{endpoint}: connect timed out"
            return side
        except OSError as exc:
            side.obs.outcome = Outcome.CONNECTION_ERROR
            side.obs.error = f"{endpoint}: {exc.strerror or exc}"
            return side
        ms = max(1, int(timeout * 1000))
        options: dict[str, Any] = {
            "directConnection": True,
            "serverSelectionTimeoutMS": ms,
            "connectTimeoutMS": ms,
            "socketTimeoutMS": ms,
            "tls": bool(conn.get("tls")),
            "retryReads": False,
            "maxPoolSize": 1,
            "appname": "bcservice-monitor",
        }
        if creds.get("username"):
            options.update(
                username=creds["username"],
                password=creds.get("password", ""),
                authSource=conn.get("auth_source") or "admin",
            )
        client = None
        try:
            client = MongoClient(host, port, **options)
            # Database.command() ignores the client's codec options unless given its own.
            side.hello = client.admin.command("hello", codec_options=_CODEC)
            side.status = client.admin.command("replSetGetStatus", codec_options=_CODEC)
        except Exception as exc:  # never raise: every failure becomes an outcome
            side.obs.outcome = self._classify(exc, client)
            side.obs.error = _text(exc, creds)
            if endpoint not in side.obs.error:
                side.obs.error = f"{endpoint}: {side.obs.error}"
        finally:
            if client is not None:
                client.close()
        if side.hello is not None:
            self._describe(side, conn)
        return side

    @staticmethod
    def _classify(exc: Exception, client: MongoClient | None) -> Outcome:
        if isinstance(exc, OperationFailure):
            if exc.code == 18:
                return Outcome.AUTH_FAILED
            if exc.code == 13:
                return Outcome.PERMISSION_DENIED
            if isinstance(exc, ExecutionTimeout) or exc.code == 50:
                return Outcome.TIMEOUT
            return Outcome.ERROR
        if isinstance(exc, ServerSelectionTimeoutError):
            # Selection gives up after the timeout whatever happened; the monitor's last error
            # says whether the member hung (timeout) or refused/reset the connection.
            errors = []
            if client is not None:
                errors = [
                    d.error for d in client.topology_description.server_descriptions().values()
                ]
            if any(e is not None and not isinstance(e, NetworkTimeout) for e in errors):
                return Outcome.CONNECTION_ERROR
            return Outcome.TIMEOUT
        if isinstance(exc, NetworkTimeout):
            return Outcome.TIMEOUT
        if isinstance(exc, ConnectionFailure):
            return Outcome.CONNECTION_ERROR
        if isinstance(exc, ConfigurationError):
            return Outcome.NOT_CONFIGURED
        return Outcome.ERROR

    @staticmethod
    def _describe(side: _Side, conn: dict[str, Any]) -> None:
        hello, status, obs = side.hello or {}, side.status or {}, side.obs
        if hello.get("isWritablePrimary"):
            obs.role = Role.PRIMARY
        elif hello.get("secondary"):
            obs.role = Role.STANDBY
        else:
            obs.role = Role.OTHER  # arbiter, RECOVERING, STARTUP2, ROLLBACK ...
        expected = conn.get("replica_set")
        if expected and hello.get("setName") != expected:
            obs.outcome = Outcome.ERROR
            obs.error = f"member belongs to set {hello.get('setName')!r}, expected {expected!r}"
        optimes = status.get("optimes") or {}
        me = next((m for m in status.get("members", []) if m.get("self")), {})
        obs.marker = marker(optimes.get("appliedOpTime"))
        if status:
            obs.healthy = me.get("health") == 1 and status.get("myState") in (1, 2)
        obs.details = {
            "set": hello.get("setName"),
            "me": hello.get("me"),
            "state": me.get("stateStr"),
            "my_state": status.get("myState"),
            "term": status.get("term"),
            "sync_source": status.get("syncSourceHost"),
            "applied_optime": obs.marker,
            "durable_optime": marker(optimes.get("durableOpTime")),
            "last_committed_optime": marker(optimes.get("lastCommittedOpTime")),
        }

    # -- both sides --------------------------------------------------------------------------

    def _assemble(
        self, observed_at: datetime, conn: dict[str, Any], primary: _Side, dr: _Side
    ) -> Observation:
        obs = Observation(observed_at=observed_at, primary=primary.obs, dr=dr.obs)
        sides = [s for s in (primary, dr) if s.obs.reachable and s.status]
        obs.raw = {
            s.obs.site: {"hello": _hello_summary(s.hello), "replSetGetStatus": jsonable(s.status)}
            for s in (primary, dr)
            if s.hello is not None
        }
        # The view of the set to read optimes from: the current primary's when it can be seen
        # (it has the freshest picture of everyone), else the DR member's.
        view_side = next((s for s in sides if s.obs.role == Role.PRIMARY), None) or next(
            (s for s in sides if s.obs.site == "dr"), None
        )
        view = (view_side.status or {}).get("members", []) if view_side else []
        live_primaries = {m["name"] for m in view if m.get("state") == 1 and m.get("health") == 1}
        live_primaries |= {s.name for s in sides if s.obs.role == Role.PRIMARY}

        current = next((s for s in (primary, dr) if s.obs.role == Role.PRIMARY), None)
        replica = primary if current is dr else dr
        by_name = {m.get("name"): m for m in view}
        primary_entry = by_name.get(current.name) if current else None
        if primary_entry is None and len(live_primaries) == 1:
            primary_entry = by_name.get(next(iter(live_primaries)))
        replica_entry = by_name.get(replica.name)

        # Both markers from one view, read at one instant, so that they compare; a side's own
        # appliedOpTime (read a few milliseconds apart) is the fallback.
        replica_healthy = bool(replica_entry and replica_entry.get("health") == 1)
        obs.primary_marker = (marker(primary_entry.get("optime")) if primary_entry else None) or (
            current.obs.marker if current else None
        )
        obs.dr_marker = (
            marker(replica_entry.get("optime")) if replica_healthy and replica_entry else None
        ) or replica.obs.marker
        obs.marker_available = bool(obs.primary_marker and obs.dr_marker)
        if primary_entry and replica_healthy and primary_entry is not replica_entry:
            p_date, r_date = primary_entry.get("optimeDate"), replica_entry.get("optimeDate")
            if isinstance(p_date, datetime) and isinstance(r_date, datetime) and r_date > _EPOCH:
                obs.lag_seconds = max(0.0, (p_date - r_date).total_seconds())
        if replica_entry and replica_entry.get("health") == 0:
            message = replica_entry.get("lastHeartbeatMessage") or ""
            obs.notes.append(
                f"{replica.name} is {replica_entry.get('stateStr')} as seen from "
                f"{view_side.name if view_side else 'the set'}"
                + (f": {message}" if message else "")
            )
        obs.replication = self._replication(obs, sides, live_primaries, replica, replica_entry)
        return obs

    @staticmethod
    def _replication(
        obs: Observation,
        sides: list[_Side],
        live_primaries: set[str],
        replica: _Side,
        replica_entry: dict[str, Any] | None,
    ) -> Replication:
        if len(live_primaries) > 1:
            obs.notes.append(f"more than one primary: {', '.join(sorted(live_primaries))}")
            return Replication.BROKEN
        if sides and not live_primaries:
            # A definite finding even when the other side is unreachable: no member accepts
            # writes, so nothing replicates.
            obs.notes.append("no member of the replica set is primary")
            return Replication.BROKEN
        if not (obs.primary.reachable and obs.dr.reachable):
            return Replication.UNKNOWN
        state = (replica.status or {}).get("myState")
        if state != SECONDARY_STATE:
            label = (replica_entry or {}).get("stateStr") or state
            obs.notes.append(f"{replica.name} is {label}, not SECONDARY: it does not replicate")
            return Replication.STOPPED
        if not (replica.status or {}).get("syncSourceHost"):
            obs.notes.append(f"{replica.name} has no sync source")
            return Replication.STOPPED
        return Replication.STREAMING


def _hello_summary(hello: dict[str, Any] | None) -> dict[str, Any]:
    keep = (
        "setName", "me", "primary", "isWritablePrimary", "secondary", "arbiterOnly", "passive",
        "hosts", "passives", "arbiters", "electionId", "topologyVersion", "lastWrite",
        "maxWireVersion",
    )  # fmt: skip
    return jsonable({k: v for k, v in (hello or {}).items() if k in keep})


def _text(exc: BaseException, creds: dict[str, str]) -> str:
    """Readable, bounded, credential-free error text."""
    if isinstance(exc, PyMongoError):
        text = str(exc).split(", Topology Description:")[0].split(", full error:")[0]
    else:
        text = f"{type(exc).__name__}: {exc}"
    for value in creds.values():
        if value and len(value) > 3:
            text = text.replace(value, "***")
    return text[:300]
