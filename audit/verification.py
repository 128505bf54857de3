"""Verify the chain against the checkpoints exported outside the database.

The chain alone proves that nobody changed an event without recomputing every later hash. The
signed checkpoints prove the rest: a whole-table rewrite with recomputed hashes no longer matches
the hash a checkpoint signed for its sequence number, and a restore of an old backup lacks the
events a later checkpoint covers ("missing tail after seq N"). A checkpoint whose signature does
not verify is reported as forged and is not used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from audit import conf, selectors
from audit.checkpoint_store import Found, StoreError
from audit.checkpoints import stores
from audit.models import AuditCheckpoint
from audit.selectors import VerifyResult
from audit.signing import load_public_keys, signature_problem


@dataclass
class CheckpointReport:
    ok: bool = True
    sources: list[str] = field(default_factory=list)
    found: int = 0
    verified: int = 0
    latest_seq: int | None = None
    latest_at: str | None = None
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)


@dataclass(frozen=True)
class AuditVerification:
    chain: VerifyResult
    checkpoints: CheckpointReport
    missing_tail_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.checkpoints.ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.chain.events_checked,
            "first_bad_seq": self.chain.first_bad_seq,
            "reason": self.chain.reason,
            "missing_tail_after": self.missing_tail_after,
            "checkpoints": asdict(self.checkpoints),
        }


def _read_exports(report: CheckpointReport) -> tuple[list[Found], int]:
    """Everything the configured stores hold; unreadable stores become problems."""
    found: list[Found] = []
    coverage = None
    for store in stores():
        report.sources.append(store.describe())
        try:
            items, covers_from = store.read()
        except StoreError as exc:
            report.problem(str(exc))
            continue
        found.extend(items)
        coverage = covers_from if coverage is None else min(coverage, covers_from)
    return found, coverage or 0


def check_checkpoints(report: CheckpointReport) -> dict[int, str]:
    """Signed checkpoints (exported copies and the database's) as {seq: hash}, with problems."""
    exported, covers_from = _read_exports(report)
    recorded = [
        Found(f"db:checkpoint {c.seq}", c.document()) for c in AuditCheckpoint.objects.all()
    ]
    everything = exported + recorded
    report.found = len(everything)
    try:
        keys = load_public_keys(conf.public_key_file())
    except (OSError, ValueError) as exc:
        keys = {}
        if everything:
            report.problem(f"cannot check checkpoint signatures: {exc}")
    hashes: dict[int, str] = {}
    for item in everything:
        if item.document is None:
            report.problem(f"{item.location}: unreadable checkpoint: {item.error}")
            continue
        document = item.document
        if not keys:
            continue
        problem = signature_problem(document, keys)
        if problem:
            report.problem(f"{item.location}: checkpoint seq {document['seq']}: {problem}")
            continue
        report.verified += 1
        seq, digest = document["seq"], document["hash"]
        if hashes.setdefault(seq, digest) != digest:
            report.problem(f"two signed checkpoints disagree about seq {seq}: {item.location}")
        if report.latest_seq is None or seq > report.latest_seq:
            report.latest_seq, report.latest_at = seq, document["at"]
    exported_seqs = {f.document["seq"] for f in exported if f.document is not None}
    for item in recorded:
        seq = item.document["seq"] if item.document else None
        if seq is not None and seq >= covers_from and seq not in exported_seqs:
            report.problem(
                f"checkpoint seq {seq} is recorded in the database but missing from every export"
            )
    return hashes


def verify_all(*, use_checkpoints: bool = True) -> AuditVerification:
    """The whole chain, checked against every signed checkpoint that could be read."""
    report = CheckpointReport()
    hashes = check_checkpoints(report) if use_checkpoints else {}
    walked = selectors.walk_db(checkpoints=hashes)
    chain = VerifyResult(walked.ok, walked.checked, walked.first_bad_seq, walked.reason)
    if not walked.ok or not hashes:
        return AuditVerification(chain, report)
    last = walked.last_seq or 0
    newest = max(hashes)
    if newest > last:
        chain = VerifyResult(
            False,
            walked.checked,
            last + 1,
            f"missing tail after seq {last}: a signed checkpoint covers up to seq {newest}",
        )
        return AuditVerification(chain, report, missing_tail_after=last)
    return AuditVerification(chain, report)
