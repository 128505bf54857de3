"""Streaming exports for auditors: JSON Lines and CSV, in constant memory.

An ``Export`` is a kind, its columns, an iterator of rows (dicts of JSON values) and a header and
trailer. The renderers below turn any export into a stream, so further exports (requests,
approvals, executions, evidence) only have to provide rows. Rows are read in keyset batches
(``seq > last ORDER BY seq LIMIT n``): flat memory, no long-lived server-side cursor, and the
same on PostgreSQL and SQLite.

The audit events export is verifiable offline (``python -m audit.verify``): each event line
carries every hashed field exactly as hashed, and the trailer carries the newest signed
checkpoint at or below the last exported sequence number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _string
from typing import Any

from django.db import connection
from django.db.models import F, Max, Min, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from django.utils import timezone

from audit import selectors
from audit.chain import ROW_FIELDS, canonical_json, format_time, load_json_text
from audit.models import AuditEvent

EXPORT_VERSION = 1
EVENTS_FORMAT = "bcservice.audit.events"
STREAM_FORMATS = ("jsonl", "csv")
# Exports that stream every format, a JSON document included (requests, executions).
DOCUMENT_FORMATS = ("json", "jsonl", "csv")
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
# A spreadsheet evaluates a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 2000


@dataclass
class Export:
    """Rows are tuples in ``columns`` order; JSON-valued cells are Python values, or JSON text
    when the kind's ``line`` encoder says so (the events export)."""

    kind: str
    columns: tuple[str, ...]
    rows: Iterable[Sequence[Any]]
    header: dict[str, Any]
    trailer: Callable[[], dict[str, Any]]
    filename: str
    # A faster JSON Lines encoder for this kind's rows, when it has one.
    line: Callable[[Sequence[Any]], str] | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def csv_text(value: str) -> str:
    """A string made safe for a spreadsheet: a leading ' stops formula evaluation."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        return csv_text(canonical_json(value))
    return csv_text(str(value))


def _json_line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str)


def jsonl_chunks(export: Export, batch: int = 500) -> Iterator[bytes]:
    """Header line, one line per row, trailer line; yielded in chunks of ``batch`` lines."""
    columns = export.columns
    encode = export.line or (
        lambda row: _json_line({"record": "row", **dict(zip(columns, row, strict=True))})
    )
    yield (_json_line({"record": "header", **export.header}) + "\n").encode()
    lines: list[str] = []
    for row in export.rows:
        lines.append(encode(row))
        if len(lines) >= batch:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()
    yield (_json_line({"record": "trailer", **export.trailer()}) + "\n").encode()


def csv_chunks(export: Export, batch: int = 500) -> Iterator[bytes]:
    """Column names, one row per record, and a last row "# export" holding header and trailer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: quotes, newlines, commas

    def flush() -> bytes:
        data = buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writerow(export.columns)
    for count, row in enumerate(export.rows, start=1):
        writer.writerow([csv_cell(value) for value in row])
        if count % batch == 0:
            yield flush()
    meta = {**export.header, **export.trailer()}
    padding = [""] * max(0, len(export.columns) - 2)
    writer.writerow(["# export", json.dumps(meta, ensure_ascii=False, default=str), *padding])
    yield flush()


def json_chunks(export: Export, batch: int = 500) -> Iterator[bytes]:
    """One JSON document, ``{"header": {..}, "rows": [{..}, ..], "trailer": {..}}``, written as
    it is read: the rows list is never held in memory."""
    columns = export.columns
    yield ('{"header":' + _json_line(export.header) + ',"rows":[').encode()
    lines: list[str] = []
    first = True
    for row in export.rows:
        lines.append(_json_line(dict(zip(columns, row, strict=True))))
        if len(lines) >= batch:
            yield (("" if first else ",") + ",".join(lines)).encode()
            first, lines = False, []
    if lines:
        yield (("" if first else ",") + ",".join(lines)).encode()
    yield ('],"trailer":' + _json_line(export.trailer()) + "}\n").encode()


_RENDERERS: dict[str, Callable[[Export], Iterator[bytes]]] = {
    "jsonl": jsonl_chunks,
    "csv": csv_chunks,
    "json": json_chunks,
}


def streaming_response(export: Export, fmt: str) -> StreamingHttpResponse:
    chunks = _RENDERERS[fmt](export)
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{export.filename}.{fmt}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def keyset_batches(queryset: QuerySet, batch: int, key: str = "pk") -> Iterator[list[Any]]:
    """Model instances of ``queryset`` in lists of at most ``batch``, ordered by ``key`` (unique,
    ascending), one query per list (plus the queryset's prefetches): flat memory for any size."""
    last = None
    while True:
        page = queryset if last is None else queryset.filter(**{f"{key}__gt": last})
        rows = list(page.order_by(key)[:batch])
        if rows:
            yield rows
        if len(rows) < batch:  # a short page is the last one: no query for an empty page
            return
        last = getattr(rows[-1], key)


def audit_ranges(object_type: str, object_ids: Iterable[Any]) -> dict[str, tuple[int, int]]:
    """First and last audit sequence number of the events about each object, in one query;
    objects with no event are absent. Lets another app's export link its rows to the chain."""
    ids = [str(i) for i in object_ids]
    if not ids:
        return {}
    rows = (
        AuditEvent.objects.filter(object_type=object_type, object_id__in=ids)
        .order_by()
        .values("object_id")
        .annotate(first=Min("seq"), last=Max("seq"))
        .values_list("object_id", "first", "last")
    )
    return {object_id: (first, last) for object_id, first, last in rows}


def audit_coverage(first_seq: int | None, last_seq: int | None) -> dict[str, Any]:
    """How events ``first_seq..last_seq`` are anchored: the first signed checkpoint at or after
    ``last_seq`` pins every one of them through the chain links (None until one is signed)."""
    checkpoint = selectors.checkpoint_covering(last_seq) if last_seq is not None else None
    newest = selectors.latest_checkpoint()
    return {
        "first_seq": first_seq,
        "last_seq": last_seq,
        "covered": last_seq is not None and checkpoint is not None,
        "checkpoint": checkpoint.document() if checkpoint is not None else None,
        "newest_checkpoint_seq": newest.seq if newest is not None else None,
    }


AUDIT_COLUMNS = ("audit_first_seq", "audit_last_seq")


def object_export(
    *,
    kind: str,
    queryset: QuerySet,
    object_type: str,
    columns: tuple[str, ...],
    to_row: Callable[[Any], Sequence[Any]],
    filters: Mapping[str, Any],
    filename: str,
    batch: int = 500,
) -> Export:
    """An export of model rows (requests, executions, ...) linked to the audit chain.

    Pinned at the start: rows created later (a higher primary key) and events appended later are
    left out of the header's numbers. Each row ends with the first and last sequence number of
    the events about it (read after the row, so they include the event of the state shown); the
    trailer names the signed checkpoint that covers the last of them. ``to_row`` turns one
    instance into cells in ``columns`` order (prefetch what it reads on ``queryset``).
    """
    top = selectors.head()
    newest = queryset.model.objects.order_by("-pk").values_list("pk", flat=True).first()
    stats: dict[str, Any] = {"rows": 0, "first_seq": None, "last_seq": None}
    header = {
        "format": f"bcservice.{kind}",
        "version": EXPORT_VERSION,
        "generated_at": format_time(timezone.now()),
        "filters": {k: v for k, v in filters.items() if v not in (None, "")},
        "audit_head_seq": top["seq"] if top else 0,
        "audit_object_type": object_type,
    }

    def rows() -> Iterator[tuple]:
        pinned = queryset.filter(pk__lte=newest or 0)
        for objects in keyset_batches(pinned, batch):
            ranges = audit_ranges(object_type, (obj.pk for obj in objects))
            for obj in objects:
                first, last = ranges.get(str(obj.pk), (None, None))
                stats["rows"] += 1
                if first is not None:
                    low, high = stats["first_seq"], stats["last_seq"]
                    stats["first_seq"] = first if low is None else min(low, first)
                    stats["last_seq"] = last if high is None else max(high, last)
                yield (*to_row(obj), first, last)

    return Export(
        kind=kind,
        columns=(*columns, *AUDIT_COLUMNS),
        rows=rows(),
        header=header,
        trailer=lambda: {
            "rows": stats["rows"],
            "audit": audit_coverage(stats["first_seq"], stats["last_seq"]),
        },
        filename=filename,
        stats=stats,
    )


# --- audit events --------------------------------------------------------------------------------


def keyset(queryset: QuerySet, key: str, fields: tuple[str, ...], batch: int) -> Iterator[tuple]:
    """``values_list(*fields)`` of an ordered queryset, ``batch`` rows per query, by ``key``."""
    position = fields.index(key)
    last = None
    while True:
        page = queryset if last is None else queryset.filter(**{f"{key}__gt": last})
        rows = list(page.order_by(key).values_list(*fields)[:batch])
        if not rows:
            return
        yield from rows
        last = rows[-1][position]


def event_line(row: Sequence[Any]) -> str:
    """One event as a JSON line, every hashed field exactly as hashed; before/after arrive as
    JSON text and are spliced in (the verifier parses and re-canonicalises them)."""
    seq, at, actor_id, actor_name, action, object_type, object_id, object_name = row[:8]
    before, after, request_id, context, prev_hash, digest = row[8:]
    return "".join(
        (
            '{"record":"event","seq":',
            str(seq),
            ',"at":',
            _string(at),
            ',"actor_id":',
            "null" if actor_id is None else str(actor_id),
            ',"actor_name":',
            _string(actor_name),
            ',"action":',
            _string(action),
            ',"object_type":',
            _string(object_type),
            ',"object_id":',
            _string(object_id),
            ',"object_name":',
            _string(object_name),
            ',"before":',
            before or "null",
            ',"after":',
            after or "null",
            ',"request_id":',
            _string(request_id),
            ',"context":',
            _string(context),
            ',"prev_hash":',
            _string(prev_hash),
            ',"hash":',
            _string(digest),
            "}",
        )
    )


# PostgreSQL renders ``at`` as the hash covers it, and hands jsonb over as text, which is always
# one valid JSON value there: it can go into the line without a parse. SQLite keeps JSON as text
# that nothing validated, so there it is parsed and re-encoded (a stored value can never break
# out of its field in the export).
_AT_TEXT = RawSQL(
    """to_char("audit_auditevent"."at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')""",
    [],
)
_TEXT_FIELDS = ("_at", *ROW_FIELDS[2:8], "_before", "_after", *ROW_FIELDS[10:])


def event_rows(queryset: QuerySet[AuditEvent], stats: dict[str, Any]) -> Iterator[tuple]:
    """Rows in ``ROW_FIELDS`` order with ``at`` as text and before/after as JSON text."""
    on_postgres = connection.vendor == "postgresql"
    queryset = queryset.annotate(
        _at=_AT_TEXT if on_postgres else F("at"),
        _before=Cast("before", TextField()),
        _after=Cast("after", TextField()),
    )
    rows = keyset(queryset, "seq", ("seq", *_TEXT_FIELDS), BATCH)
    for count, row in enumerate(rows, start=1):
        if not on_postgres:
            row = (
                row[0],
                format_time(row[1]),
                *row[2:8],
                *(None if v is None else canonical_json(load_json_text(v)) for v in row[8:10]),
                *row[10:],
            )
        stats["events"], stats["last_seq"] = count, row[0]
        stats.setdefault("first_seq", row[0])
        yield row


def _events_trailer(stats: dict[str, Any]) -> dict[str, Any]:
    last = stats.get("last_seq")
    checkpoint = selectors.latest_checkpoint(last) if last is not None else None
    return {
        "events": stats.get("events", 0),
        "first_seq": stats.get("first_seq"),
        "last_seq": last,
        # The newest signed checkpoint at or below the last exported event. When its sequence
        # number is in this file, the verifier checks the file up to it against the signature.
        "checkpoint": checkpoint.document() if checkpoint else None,
    }


def events_export(
    queryset: QuerySet[AuditEvent], *, filters: Mapping[str, Any], filtered: bool
) -> Export:
    """Export of the given events, pinned to the head at the start (later appends excluded)."""
    top = selectors.head()
    upto = top["seq"] if top else 0
    stats: dict[str, Any] = {}
    header = {
        "format": EVENTS_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": format_time(timezone.now()),
        "filters": {k: v for k, v in filters.items() if v not in (None, "")},
        # Filtered exports skip events: their links can only be checked where numbers follow on.
        "filtered": filtered,
        "head_seq": upto,
        "hash": "sha256 of canonical JSON (sorted keys, compact, UTF-8) of the hashed fields",
        "hashed_fields": list(ROW_FIELDS[:-1]),
    }
    return Export(
        kind="audit.events",
        columns=ROW_FIELDS,
        rows=event_rows(queryset.filter(seq__lte=upto), stats),
        header=header,
        trailer=lambda: _events_trailer(stats),
        filename=f"audit-events-{upto}",
        line=event_line,
        stats=stats,
    )
