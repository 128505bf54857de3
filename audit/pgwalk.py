"""The PostgreSQL fast path for verifying the chain: plain SQL, C parsers, several processes.

The ORM costs more per row than hashing does, so verification reads rows with keyset-paginated
plain queries (each batch an index range scan) in which PostgreSQL already renders ``at`` the way
the hash covers it, and hands ``before``/``after`` over as JSON text for the C scanner. Hashing is
CPU-bound and each event verifies on its own, so a long chain is split into contiguous ranges
walked by separate processes, then stitched: each range must start with the link its
predecessor ended on. This module imports psycopg but no Django, so spawned workers start fast.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from audit.chain import GENESIS_HASH, Link, WalkResult, canonical_json, load_json_text, walk

# PostgreSQL renders everything but before/after straight into the canonical text (see
# audit.chain.canonical_row for the key order): to_json(text) escapes exactly as Python's json
# does with ensure_ascii=False, and ``at`` comes out as audit.chain.format_time writes it. The JSON
# values still go through Python, because jsonb normalises numbers and key order differently.
# to_json on eight columns was a third of the server's work per row, and it only changes a string
# holding '"', '\\' or a control character (what JSON escapes): one regular expression over all
# eight tells whether the row can be quoted as it is. A test compares this text with
# audit.chain.canonical on hostile values, which take the to_json path.
_TEXT_COLUMNS = (
    "action",
    "actor_name",
    "context",
    "object_id",
    "object_name",
    "object_type",
    "prev_hash",
    "request_id",
)


def _json_string(column: str) -> str:
    return f"""CASE WHEN plain THEN '"' || {column} || '"' ELSE to_json({column})::text END"""


ROWS_SQL = f"""
SELECT seq, prev_hash, hash,
  '{{"action":' || {_json_string("action")} || ',"actor_id":' || coalesce(actor_id::text, 'null')
    || ',"actor_name":' || {_json_string("actor_name")} || ',"after":',
  after::text,
  ',"at":"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
    || '","before":',
  before::text,
  ',"context":' || {_json_string("context")} || ',"object_id":' || {_json_string("object_id")}
    || ',"object_name":' || {_json_string("object_name")}
    || ',"object_type":' || {_json_string("object_type")}
    || ',"prev_hash":' || {_json_string("prev_hash")}
    || ',"request_id":' || {_json_string("request_id")}
    || ',"seq":' || seq::text || '}}'
FROM (
  -- A subquery with LIMIT is not flattened, so ``plain`` is computed once per row (a LATERAL
  -- subquery would be, and its expression copied into each CASE).
  SELECT *, ({" || ".join(_TEXT_COLUMNS)}) !~ '["\\\\\\x01-\\x1f]' AS plain
  FROM audit_auditevent WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s
) AS page
ORDER BY seq
"""  # noqa: S608 (built from the constants above, never from input)
BATCH = 20_000


# Most events repeat a few before/after values ({"state": "green", ...}); remembering the
# canonical text of recent JSON values halves the per-event cost on such data (see
# docs/benchmarks.md). Bounded, and emptied when full so it follows what the chain holds now.
CACHE_SIZE = 16384


def iter_links(cursor: Any, after_seq: int, upto_seq: int, batch: int = BATCH) -> Iterator[Link]:
    """Links for after_seq < seq <= upto_seq, in order, ``batch`` rows at a time (flat memory)."""
    dump, load = canonical_json, load_json_text
    # SQL NULL is JSON null; the lookups are inlined below because a function call per value
    # costs a measurable share of the whole walk (docs/benchmarks.md, Audit).
    cache: dict[str | None, str] = {None: "null"}
    get = cache.get

    def miss(text: str) -> str:
        if len(cache) >= CACHE_SIZE:
            cache.clear()
            cache[None] = "null"
        found = cache[text] = dump(load(text))
        return found

    while after_seq < upto_seq:
        cursor.execute(ROWS_SQL, [after_seq, upto_seq, batch])
        rows = cursor.fetchall()
        if not rows:
            return
        for seq, prev_hash, digest, head, after, middle, before, tail in rows:
            # A canonical JSON text is never empty, so ``or`` only falls through on a miss.
            after = get(after) or miss(after)
            before = get(before) or miss(before)
            yield seq, prev_hash, digest, f"{head}{after}{middle}{before}{tail}".encode()
        after_seq = rows[-1][0]


@dataclass(frozen=True)
class RangeResult:
    start: int  # the first sequence number the range should hold
    first_prev_hash: str | None  # the link its first row claims (None when it is empty)
    result: WalkResult


def walk_range(
    cursor: Any,
    start: int,
    upto: int,
    checkpoints: Mapping[int, str] | None,
    prev_hash: str | None = None,
) -> RangeResult:
    """Walk start..upto; without ``prev_hash`` the first row's own link is taken as given."""
    links = iter_links(cursor, start - 1, upto)
    first = next(links, None)
    if first is None:
        if start > upto:
            return RangeResult(start, None, WalkResult(True, 0, None, "", None, ""))
        missing = WalkResult(False, 0, start, f"sequence {start} is missing", None, "")
        return RangeResult(start, None, missing)
    claimed = first[1]

    result = walk(
        itertools.chain([first], links),
        expected_seq=start,
        prev_hash=claimed if prev_hash is None else prev_hash,
        checkpoints=checkpoints,
    )
    if result.ok and (result.last_seq or 0) < upto:
        # The range ran out early: its last events are gone (upto was read, so it existed).
        missing = (result.last_seq or 0) + 1
        result = WalkResult(
            False,
            result.checked,
            missing,
            f"sequence {missing} is missing",
            result.last_seq,
            result.last_hash,
        )
    return RangeResult(start, claimed, result)


def _worker(params: dict[str, Any], start: int, upto: int, cps: dict[int, str]) -> RangeResult:
    import psycopg

    with psycopg.connect(**params) as conn, conn.cursor() as cursor:
        return walk_range(cursor, start, upto, cps)


def walk_parallel(
    params: dict[str, Any],
    upto: int,
    checkpoints: Mapping[int, str] | None,
    workers: int,
) -> WalkResult:
    """Verify 1..upto with ``workers`` processes (each its own connection) and stitch the ranges."""
    size = -(-upto // workers)
    bounds = [(s, min(s + size - 1, upto)) for s in range(1, upto + 1, size)]
    cps = dict(checkpoints or {})
    # spawn, not fork: the caller may be a threaded web server holding open connections.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(bounds), mp_context=context) as pool:
        futures = [pool.submit(_worker, params, s, e, cps) for s, e in bounds]
        ranges = [f.result() for f in futures]
    return stitch(ranges)


def stitch(ranges: list[RangeResult]) -> WalkResult:
    """Join range results in order into one result, as if one walk had covered them all."""
    checked, prev_hash, last_seq = 0, GENESIS_HASH, None
    for part in ranges:
        res = part.result
        if part.first_prev_hash is not None and part.first_prev_hash != prev_hash:
            return WalkResult(
                False,
                checked,
                part.start,
                "link to the previous event is broken",
                last_seq,
                prev_hash,
            )
        if not res.ok:
            return WalkResult(
                False,
                checked + res.checked,
                res.first_bad_seq,
                res.reason,
                res.last_seq or last_seq,
                res.last_hash or prev_hash,
            )
        checked += res.checked
        if res.last_seq is not None:
            prev_hash, last_seq = res.last_hash, res.last_seq
    return WalkResult(True, checked, None, "", last_seq, prev_hash)
