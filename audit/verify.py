"""Verify an exported audit file offline: ``python -m audit.verify EXPORT.jsonl``.

Needs no service and no database, and imports nothing from Django: only ``audit/chain.py`` (the
same encoding the service hashes with) and ``audit/signing.py`` (Ed25519, from ``cryptography``).
An auditor can copy those three files plus an empty ``audit/__init__.py`` and run them anywhere.

Checks, streaming the file once (flat memory, any size):
- every event's hash matches its content, and each links to the one before (a file that does not
  start at seq 1 takes its first link as given; a filtered export skips events, so links are only
  checked where numbers follow on);
- the trailer is present and counts the events read (a cut-off download fails);
- each checkpoint (the trailer's, and any given with ``--checkpoint``) whose sequence number is in
  the file has that event's hash, and its signature verifies with ``--public-key``.

Exit status: 0 verified, 1 verification failed, 2 the file or a key could not be read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from audit.chain import GENESIS_HASH, ROW_FIELDS, Link, WalkResult, canonical_row, walk


class ExportError(Exception):
    """The file or a key cannot be read at all (exit status 2)."""


class MalformedExport(Exception):
    """A line is not a JSON object: a damaged or cut-off file (verification fails)."""


def _last_line(path: Path) -> bytes:
    """The file's last non-empty line, read from the end (the trailer) without a full pass."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        end = handle.tell()
        block, data = 65536, b""
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            data = handle.read(end - start) + data
            lines = data.rstrip(b"\r\n").split(b"\n")
            if len(lines) > 1 or start == 0:
                return lines[-1]
            end = start
    return b""


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:
                raise MalformedExport(f"line {number} is not JSON (damaged or cut off)") from exc
            if not isinstance(record, dict):
                raise MalformedExport(f"line {number} is not a JSON object")
            yield record


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failures: list[str] = []
        self.facts: dict[str, Any] = {}

    def say(self, text: str) -> None:
        self.lines.append(text)

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.lines.append(f"FAILED: {text}")


def _load_checkpoint(path: Path) -> dict:
    from audit.signing import parse_checkpoint

    try:
        return parse_checkpoint(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ExportError(f"checkpoint {path}: {exc}") from exc


def verify_export(
    path: Path, checkpoint_files: Sequence[Path] = (), public_key: Path | None = None
) -> Report:
    """Verify one exported JSON Lines file; the report lists what was checked and what failed."""
    from audit.signing import CheckpointFormatError, load_public_keys, parse_checkpoint

    report = Report()
    try:
        last_line = _last_line(path)
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc
    try:
        trailer = json.loads(last_line or b"{}")
    except ValueError:
        trailer = None  # a cut-off last line: reported below as a missing trailer
    checkpoints = [_load_checkpoint(p) for p in checkpoint_files]
    has_trailer = isinstance(trailer, dict) and trailer.get("record") == "trailer"
    if has_trailer and trailer.get("checkpoint"):
        try:
            checkpoints.append(parse_checkpoint(trailer["checkpoint"]))
        except CheckpointFormatError as exc:
            report.fail(f"the trailer's checkpoint is malformed: {exc}")
    keys = {}
    if public_key is not None:
        try:
            keys = load_public_keys(public_key)
        except (OSError, ValueError) as exc:
            raise ExportError(f"public key {public_key}: {exc}") from exc

    usable = _signed(report, checkpoints, keys, keyed=public_key is not None)
    pinned: dict[int, str] = {}
    for checkpoint in usable:
        if pinned.setdefault(checkpoint["seq"], checkpoint["hash"]) != checkpoint["hash"]:
            report.fail(f"two checkpoints disagree about seq {checkpoint['seq']}")
    header: dict[str, Any] = {}
    state: dict[str, Any] = {"events": 0, "first": None, "last": None, "first_prev": None}
    pinned_seen: set[int] = set()

    def links() -> Iterator[Link]:
        for record in _records(path):
            kind = record.get("record", "event")
            if kind == "header":
                header.update(record)
                continue
            if kind != "event":
                continue
            row = tuple(record.get(name) for name in ROW_FIELDS)
            seq = row[0]
            if state["first"] is None:
                state["first"], state["first_prev"] = seq, row[12]
            state["events"] += 1
            state["last"] = seq
            if type(seq) is int and seq in pinned:
                pinned_seen.add(seq)
            yield seq, row[12], row[13], canonical_row(row)

    stream = links()
    try:
        first = next(stream, None)
        if first is None:
            result = walk([])
        else:
            start = first[0] if type(first[0]) is int else 1
            result = walk(
                itertools.chain([first], stream),  # closing a chain leaves ``stream`` open
                expected_seq=start,
                prev_hash=GENESIS_HASH if start == 1 else first[1],
                checkpoints=pinned,
                allow_gaps=bool(header.get("filtered")),
            )
            for _ in stream:  # keep counting after a failure, for the trailer check
                pass
    except MalformedExport as exc:
        report.fail(str(exc))
        result = WalkResult(False, state["events"], None, str(exc), None, "")
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc
    _describe_chain(report, header, state, result)
    _check_trailer(report, trailer if has_trailer else None, state)
    _check_coverage(report, usable, pinned_seen, result)
    report.facts.update(
        events=state["events"],
        first_seq=state["first"],
        last_seq=state["last"],
        ok=not report.failures,
    )
    return report


def _describe_chain(report: Report, header: dict, state: dict, result: Any) -> None:
    if header.get("format") not in (None, "bcservice.audit.events"):
        report.fail(f"not an audit events export (format {header.get('format')!r})")
    filtered = bool(header.get("filtered"))
    report.say(
        f"events: {state['events']}"
        + (f" (seq {state['first']}..{state['last']})" if state["events"] else "")
        + (", filtered export: links checked only between consecutive numbers" if filtered else "")
    )
    if state["first"] not in (None, 1) and not filtered:
        report.say(
            f"starts at seq {state['first']}: its link to seq {state['first'] - 1} "
            f"({state['first_prev']}) is taken as given"
        )
    if result.ok:
        report.say("chain: every hash matches its content and every link holds")
    elif result.first_bad_seq is not None:
        report.fail(f"chain broken at seq {result.first_bad_seq}: {result.reason}")


def _check_trailer(report: Report, trailer: dict | None, state: dict) -> None:
    if trailer is None:
        report.fail("no trailer line: the export is incomplete (cut off?)")
    elif trailer.get("events") != state["events"]:
        report.fail(
            f"the trailer counts {trailer.get('events')} events, the file holds {state['events']}"
        )


def _signed(report: Report, checkpoints: list[dict], keys: dict, keyed: bool) -> list[dict]:
    """The checkpoints to hold the file against: those whose signature verifies (all, unchecked,
    when no key was given, which the report says)."""
    from audit.signing import signature_problem

    if not checkpoints:
        report.say("checkpoint: none in this export (nothing signed covers it yet)")
    usable = []
    for checkpoint in checkpoints:
        label = _label(checkpoint)
        if keyed:
            problem = signature_problem(checkpoint, keys)
            if problem:
                report.fail(f"{label}: {problem}")
                continue
            report.say(f"{label}: signature verified")
        else:
            report.say(f"{label}: signature NOT checked (give --public-key)")
        usable.append(checkpoint)
    return usable


def _label(checkpoint: dict) -> str:
    return f"checkpoint seq {checkpoint['seq']} (key {checkpoint['key_id']}, {checkpoint['at']})"


def _check_coverage(report: Report, usable: list[dict], seen: set[int], result: Any) -> None:
    for checkpoint in usable:
        seq = checkpoint["seq"]
        if seq not in seen:
            report.say(
                f"{_label(checkpoint)}: seq {seq} is not in this file, so it vouches for none of it"
            )
        elif result.ok:
            report.say(
                f"{_label(checkpoint)}: matches event {seq}: the file up to it is what was signed"
            )
            report.facts["covered_through"] = max(report.facts.get("covered_through", 0), seq)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify", description="Verify an exported audit JSON Lines file."
    )
    parser.add_argument("export", type=Path, help="the .jsonl file from audit/events/")
    parser.add_argument(
        "--checkpoint", type=Path, action="append", default=[], help="a checkpoint JSON file"
    )
    parser.add_argument("--public-key", type=Path, help="PEM public key (audit/public-keys/)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        report = verify_export(args.export, args.checkpoint, args.public_key)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ok = not report.failures
    if args.json:
        print(json.dumps({**report.facts, "failures": report.failures, "notes": report.lines}))
    else:
        print(f"export: {args.export}")
        for line in report.lines:
            print(f"  {line}")
        print("VERIFIED" if ok else "VERIFICATION FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
