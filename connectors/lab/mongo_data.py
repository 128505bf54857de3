"""Documents for the MongoDB simulator: ``insert`` and ``find``, enough for the drill's marker.

Mixed into ``MongoReplicaSetSimulator``. Documents are kept per namespace with the time they were
written; a member sees a write once it has applied that far (the primary at once, a secondary
after ``replication_delay`` or never while a fault freezes it), so a marker written on the
primary and read on the DR member measures the replication delay end to end. Only top-level
equality filters and ``limit`` are understood; the reply is a single batch (cursor id 0).
Errors as ``mongod`` gives them: 10107 NotWritablePrimary for a write to a secondary (or while a
stepdown holds writes), 13435 NotPrimaryNoSecondaryOk for a primary-only read on a secondary,
13436 NotPrimaryOrSecondary on a RECOVERING member, 11000 duplicate key in ``writeErrors``.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from bson import Int64

from connectors.lab import mongo_docs as docs


def _error(code: int, name: str, message: str) -> dict[str, Any]:
    return docs.command_error(code, name, message)


class DataCommands:
    """``insert``/``find`` over ``_data``; see the module docstring."""

    _lock: threading.RLock
    _members: list[docs.Member]
    _write_block_at: float | None
    _data: dict[str, list[tuple[float, dict[str, Any]]]]
    _applied: Callable[[docs.Member, float], float | None]

    def _insert(self, index: int, doc: dict[str, Any]) -> dict[str, Any]:
        ns = f"{doc.get('$db')}.{doc.get('insert')}"
        with self._lock:
            now = time.time()
            me = self._members[index]
            if me.state != docs.PRIMARY or self._write_block_at is not None:
                return _error(10107, "NotWritablePrimary", "not primary")
            stored = self._data.setdefault(ns, [])
            ids = {d.get("_id") for _, d in stored}
            written, errors = 0, []
            for position, item in enumerate(doc.get("documents") or []):
                if item.get("_id") in ids:
                    errors.append(
                        {
                            "index": position,
                            "code": 11000,
                            "errmsg": f"E11000 duplicate key error collection: {ns} index: _id_ "
                            f"dup key: {{ _id: {item.get('_id')!r} }}",
                        }
                    )
                    if doc.get("ordered", True):
                        break
                    continue
                stored.append((now, copy.deepcopy(dict(item))))
                ids.add(item.get("_id"))
                written += 1
        reply: dict[str, Any] = {"n": written, "ok": 1.0}
        if errors:
            reply["writeErrors"] = errors
        return reply

    def _find(self, index: int, doc: dict[str, Any]) -> dict[str, Any]:
        ns = f"{doc.get('$db')}.{doc.get('find')}"
        mode = (doc.get("$readPreference") or {}).get("mode", "primary")
        with self._lock:
            now = time.time()
            me = self._members[index]
            if me.state == docs.RECOVERING:
                return _error(13436, "NotPrimaryOrSecondary", "node is recovering")
            if me.state != docs.PRIMARY and mode == "primary":
                return _error(13435, "NotPrimaryNoSecondaryOk", "not primary and secondaryOk=false")
            horizon = self._applied(me, now) or 0.0
            wanted = doc.get("filter") or {}
            found = [
                copy.deepcopy(d)
                for written, d in self._data.get(ns, [])
                if written <= horizon and all(d.get(k) == v for k, v in wanted.items())
            ]
        limit = int(doc.get("limit") or 0)
        if limit:
            found = found[:limit]
        return {"cursor": {"firstBatch": found, "id": Int64(0), "ns": ns}, "ok": 1.0}
