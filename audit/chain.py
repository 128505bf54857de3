"""The canonical encoding and hash of an audit event; shared by the service and the verifiers.

Kept free of Django imports so that an exported file can be verified without the service
(``python -m audit.verify``). Two encoders produce the same bytes: ``canonical`` (a dict, the
reference) and ``canonical_row`` (a row tuple in ``ROW_FIELDS`` order, the fast path used to verify
millions of events); a test keeps them identical, including on hostile values.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64

# The fields covered by the hash, in a fixed order; adding one is a chain format change.
HASHED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_name",
    "before",
    "after",
    "request_id",
    "context",
    "prev_hash",
)
# A stored or exported event as a row: the hashed fields, then the hash itself.
ROW_FIELDS = (*HASHED_FIELDS, "hash")


def canonical(event: Mapping[str, Any]) -> bytes:
    """Deterministic bytes for an event: sorted keys, no whitespace, UTF-8."""
    body = {name: event.get(name) for name in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


def hash_template(event: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """``canonical(event)`` cut around the values only known once the chain is locked.

    Returns four pieces of text; the canonical text is piece 0, ``"<at>"``, piece 1,
    ``"<prev_hash>"``, piece 2, the bare sequence number, piece 3 (the hashed keys are sorted, so
    ``at`` < ``prev_hash`` < ``seq``). PostgreSQL's ``audit_append()`` joins them under the append
    lock (migration audit 0005); ``fill_template`` is the same join in Python. The pieces come from
    ``canonical`` itself, with random markers in place of the three values, so the two encodings
    cannot drift apart.
    """
    token = secrets.token_hex(16)
    marks = {name: f"{name}:{token}" for name in ("at", "prev_hash", "seq")}
    text = canonical({**event, **marks}).decode()
    pieces, rest = [], text
    for name in ("at", "prev_hash", "seq"):
        encoded = f'"{marks[name]}"'
        if rest.count(encoded) != 1:  # not reachable: the token is random and never repeated
            raise ValueError(f"cannot cut the canonical text at {name!r}")
        piece, rest = rest.split(encoded)
        pieces.append(piece)
    return pieces[0], pieces[1], pieces[2], rest


def fill_template(template: Sequence[str], at: str, prev_hash: str, seq: int) -> bytes:
    """The canonical bytes of an event from ``hash_template`` pieces and the three chain values."""
    head, after_at, after_prev, tail = template
    return f'{head}"{at}"{after_at}"{prev_hash}"{after_prev}{seq}{tail}'.encode()


def format_time(value: Any) -> str:
    """Times enter the hash as UTC ISO 8601 with microseconds, whatever the database returns."""
    from datetime import UTC

    return value.astimezone(UTC).isoformat(timespec="microseconds")


# --- the fast path -------------------------------------------------------------------------------
# json.dumps builds a new C encoder on every call, which costs more than encoding a small event;
# one encoder made once with the same options as ``canonical`` produces the same text.
def _make_dumper() -> Any:
    try:
        from json.encoder import c_make_encoder, encode_basestring
    except ImportError:  # a Python without the C accelerator: slower, same bytes
        c_make_encoder = None
    if c_make_encoder is None:
        encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return encoder.encode, encoder.encode

    def refuse(value: Any) -> Any:
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    make = c_make_encoder(None, refuse, encode_basestring, None, ":", ",", True, False, True)
    return (lambda value: "".join(make(value, 0))), encode_basestring


_dump, _string = _make_dumper()


def canonical_json(value: Any) -> str:
    """One JSON value as ``canonical`` writes it inside an event: sorted keys, compact."""
    return _dump(value)


_scan = json.JSONDecoder().scan_once


def load_json_text(text: str) -> Any:
    """Parse one JSON document (as PostgreSQL returns ``jsonb::text``) with the C scanner."""
    value, end = _scan(text, 0)
    return value if end == len(text) else json.loads(text)


def canonical_row(row: Sequence[Any], json_text: bool = False) -> bytes:
    """``canonical`` for a row in ``ROW_FIELDS`` order, without building a dict.

    With ``json_text`` the before/after values are JSON text (as fetched from PostgreSQL) and are
    parsed first. Any value of an unexpected type falls back to ``canonical`` so that both always
    agree; the keys below are the hashed fields in sorted order.
    """
    (seq, at, actor_id, actor_name, action, object_type, object_id, object_name) = row[:8]
    before, after, request_id, context, prev_hash = row[8:13]
    if type(seq) is not int or not (actor_id is None or type(actor_id) is int):
        return canonical(dict(zip(HASHED_FIELDS, row, strict=False)))
    try:
        if json_text:
            before = None if before is None else load_json_text(before)
            after = None if after is None else load_json_text(after)
        text = "".join(
            (
                '{"action":',
                _string(action),
                ',"actor_id":',
                "null" if actor_id is None else str(actor_id),
                ',"actor_name":',
                _string(actor_name),
                ',"after":',
                _dump(after),
                ',"at":',
                _string(at),
                ',"before":',
                _dump(before),
                ',"context":',
                _string(context),
                ',"object_id":',
                _string(object_id),
                ',"object_name":',
                _string(object_name),
                ',"object_type":',
                _string(object_type),
                ',"prev_hash":',
                _string(prev_hash),
                ',"request_id":',
                _string(request_id),
                ',"seq":',
                str(seq),
                "}",
            )
        )
    except TypeError:  # a None or number where a string belongs: only hostile input does that
        return canonical(dict(zip(HASHED_FIELDS, row, strict=False)))
    return text.encode()


# What ``walk`` needs of an event: its sequence number, the link it claims, its stored hash and
# the canonical bytes of its content (from which the hash is recomputed).
Link = tuple[Any, str, str, bytes]


@dataclass(frozen=True)
class WalkResult:
    """Where a walk over rows ended: ``first_bad_seq`` is None when every row verified."""

    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str
    last_seq: int | None
    last_hash: str


def canonical_rows(rows: Iterable[Sequence[Any]], json_text: bool = False) -> Iterator[Link]:
    """Rows in ``ROW_FIELDS`` order as the links ``walk`` checks."""
    build = canonical_row
    for row in rows:
        yield row[0], row[12], row[13], build(row, json_text)


def walk(
    links: Iterable[Link],
    *,
    expected_seq: int = 1,
    prev_hash: str = GENESIS_HASH,
    checkpoints: Mapping[int, str] | None = None,
    allow_gaps: bool = False,
) -> WalkResult:
    """Verify events in sequence order: contiguous numbers, links, hashes, checkpoint hashes.

    ``checkpoints`` maps a sequence number to the hash a signed checkpoint recorded for it; a row
    whose hash differs was rewritten after that checkpoint (even if its own hash was recomputed).
    ``allow_gaps`` is for filtered exports: a jump in sequence numbers is accepted, and the link
    across it cannot be checked.
    """
    sha256, cps = hashlib.sha256, checkpoints or {}
    checked, last_seq = 0, None

    def fail(seq: int, reason: str) -> WalkResult:
        return WalkResult(False, checked, seq, reason, last_seq, prev_hash)

    for seq, claimed, digest, content in links:
        if seq != expected_seq:
            if type(seq) is not int or seq < expected_seq:
                return fail(expected_seq, f"sequence {seq!r} is out of order")
            if not allow_gaps:
                return fail(expected_seq, f"sequence {expected_seq} is missing")
        elif claimed != prev_hash:
            return fail(seq, "link to the previous event is broken")
        if sha256(content).hexdigest() != digest:
            return fail(seq, "content does not match its hash")
        if cps and seq in cps and cps[seq] != digest:
            return fail(seq, "hash differs from the signed checkpoint: the chain was rewritten")
        prev_hash, expected_seq, last_seq = digest, seq + 1, seq
        checked += 1
    return WalkResult(True, checked, None, "", last_seq, prev_hash)
