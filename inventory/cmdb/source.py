"""CMDB exports: reading (file, http(s) URL or upload, within a size and time limit) and parsing
(CSV or JSON) into rows that keep their line numbers, so every problem can name its line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

REQUIRED = ("name", "owner", "environment", "tier")


class CmdbError(Exception):
    """The source could not be read at all (URL, size, encoding): nothing was planned."""


@dataclass(frozen=True)
class Source:
    text: str
    fmt: str  # "csv" or "json"
    label: str  # file name or URL without credentials and query, for reports and the audit log
    sha256: str


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str
    name: str = ""


# --- reading ---------------------------------------------------------------------------------


def max_bytes() -> int:
    """The largest export accepted (BC_CMDB_MAX_BYTES, default 10 MiB)."""
    return int(getattr(settings, "BC_CMDB_MAX_BYTES", 10 * 1024 * 1024))


def fetch_timeout() -> float:
    """How long a download may take in total (BC_CMDB_TIMEOUT, default 30 s)."""
    return float(getattr(settings, "BC_CMDB_TIMEOUT", 30))


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s): never to file:, ftp: or anything else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise CmdbError(f"refusing a redirect to a non-HTTP URL ({urlsplit(newurl).scheme}:)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _safe_label(url: str) -> str:
    """The URL without user:password@ or query string (either may carry a credential)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _fetch(url: str, limit: int, timeout: float) -> tuple[bytes, str]:
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the caller
        url,
        headers={"Accept": "application/json, text/csv;q=0.9", "User-Agent": "bcservice-cmdb"},
    )
    token = os.environ.get("BC_CMDB_TOKEN", "")  # read when used, never kept in settings
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(_HttpOnlyRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > limit:
                raise CmdbError(f"the export is {declared} bytes; the limit is {limit}")
            chunks, size = [], 0
            # socket timeouts bound each read; the deadline bounds a server that drips slowly.
            while chunk := response.read1(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise CmdbError(f"the export is larger than the limit of {limit} bytes")
                if time.monotonic() > deadline:
                    raise CmdbError(f"the download took longer than {timeout:g} s")
            return b"".join(chunks), response.headers.get_content_type()
    except CmdbError:
        raise
    except OSError as exc:  # URLError, HTTPError, timeouts, refused connections
        raise CmdbError(f"could not fetch {_safe_label(url)}: {exc}") from exc


def detect_format(name: str, content_type: str = "", text: str = "") -> str:
    """csv or json, from the name's suffix, then the content type, then the first character."""
    suffix = Path(urlsplit(name).path).suffix.lower()
    if suffix in (".csv", ".json"):
        return suffix[1:]
    if "json" in content_type:
        return "json"
    if "csv" in content_type:
        return "csv"
    return "json" if text.lstrip()[:1] in ("[", "{") else "csv"


def read_source(location: str, *, fmt: str | None = None) -> Source:
    """Read a CMDB export from a local file or an http(s) URL, within the size and time limits."""
    limit, timeout = max_bytes(), fetch_timeout()
    content_type = ""
    if "://" in location:
        if urlsplit(location).scheme not in ("http", "https"):
            raise CmdbError("only http:// and https:// URLs (or a local file) can be read")
        data, content_type = _fetch(location, limit, timeout)
        label = _safe_label(location)
    else:
        path = Path(location)
        try:
            if path.stat().st_size > limit:
                raise CmdbError(f"{path} is larger than the limit of {limit} bytes")
            data = path.read_bytes()
        except OSError as exc:
            raise CmdbError(f"could not read {path}: {exc.strerror or exc}") from exc
        label = path.name
    return from_bytes(data, name=location, label=label, content_type=content_type, fmt=fmt)


def from_bytes(
    data: bytes, *, name: str, label: str = "", content_type: str = "", fmt: str | None = None
) -> Source:
    """A Source from raw bytes (an upload, a download or a file): UTF-8, BOM allowed."""
    if len(data) > max_bytes():
        raise CmdbError(f"the export is larger than the limit of {max_bytes()} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CmdbError(f"the export is not UTF-8 text (byte {exc.start})") from exc
    fmt = fmt or detect_format(name, content_type, text)
    if fmt not in ("csv", "json"):
        raise CmdbError(f"unknown format {fmt!r}: use csv or json")
    return Source(text, fmt, label or name, hashlib.sha256(data).hexdigest())


# --- parsing ---------------------------------------------------------------------------------


def parse(source: Source) -> tuple[list[Row], list[Problem]]:
    """Rows with their line numbers, and problems that make the file (or a row) unusable."""
    return _parse_json(source.text) if source.fmt == "json" else _parse_csv(source.text)


def _parse_csv(text: str) -> tuple[list[Row], list[Problem]]:
    reader = csv.reader(io.StringIO(text))
    rows: list[Row] = []
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if not any(header):
            return [], [Problem(1, "the file is empty: a header row is required")]
        missing = [c for c in REQUIRED if c not in header]
        if missing or len(set(header)) != len(header):
            reasons = [f"missing column {c!r}" for c in missing]
            dupes = sorted({h for h in header if header.count(h) > 1})
            reasons += [f"duplicate column {c!r}" for c in dupes]
            return [], [Problem(1, r) for r in reasons]
        line = reader.line_num + 1
        for record in reader:
            start, line = line, reader.line_num + 1  # a quoted value may span several lines
            if not any(cell.strip() for cell in record):
                continue
            if len(record) > len(header):
                return [], [Problem(start, "more values than columns")]
            values = {h: v.strip() for h, v in zip(header, record, strict=False) if v.strip()}
            rows.append(Row(start, values))
    except csv.Error as exc:
        return [], [Problem(reader.line_num, f"bad CSV: {exc}")]
    return rows, []


def _ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _array_start(text: str) -> int | None:
    """Where the list of resources begins: the document itself or its "resources" member."""
    decoder = json.JSONDecoder()
    i = _ws(text, 0)
    if text[i] == "[":
        return i
    if text[i] != "{":
        return None
    i = _ws(text, i + 1)
    while text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _ws(text, _ws(text, i) + 1)  # past the colon
        if key == "resources":
            return i if text[i] == "[" else None
        _, i = decoder.raw_decode(text, i)
        i = _ws(text, i)
        if text[i] == ",":
            i = _ws(text, i + 1)
    return None


def _parse_json(text: str) -> tuple[list[Row], list[Problem]]:
    try:
        json.loads(text)  # validates the whole document, with a line number for the error
    except json.JSONDecodeError as exc:
        return [], [Problem(exc.lineno, f"bad JSON: {exc.msg} (column {exc.colno})")]
    start = _array_start(text)
    if start is None:
        return [], [Problem(1, 'expected a list of objects or {"resources": [...]}')]
    decoder = json.JSONDecoder()
    rows: list[Row] = []
    problems: list[Problem] = []
    i, line, counted = _ws(text, start + 1), 1, 0
    while text[i] != "]":
        line, counted = line + text.count("\n", counted, i), i
        item, i = decoder.raw_decode(text, i)
        if isinstance(item, dict):
            rows.append(Row(line, {str(k).strip().lower(): v for k, v in item.items()}))
        else:
            problems.append(Problem(line, "expected an object for each resource"))
        i = _ws(text, i)
        if text[i] == ",":
            i = _ws(text, i + 1)
    return rows, problems
