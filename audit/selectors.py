"""Reading and verifying the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from audit.chain import GENESIS_HASH, event_hash, format_time
from audit.models import AuditEvent

_FIELDS = (
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
    "hash",
)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events_checked: int
    first_bad_seq: int | None
    reason: str = ""


def verify_chain(batch_size: int = 5000) -> VerifyResult:
    """Walk the whole chain in sequence order; stop at the first event that does not verify.

    Checks that sequence numbers are contiguous from 1, that each row links to the previous hash,
    and that each row's hash matches its content.
    """
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    last_seq = 0
    while True:
        rows = list(
            AuditEvent.objects.filter(seq__gt=last_seq)
            .order_by("seq")
            .values_list(*_FIELDS)[:batch_size]
        )
        if not rows:
            return VerifyResult(True, checked, None)
        for row in rows:
            event = dict(zip(_FIELDS, row, strict=True))
            seq = event["seq"]
            if seq != expected_seq:
                return VerifyResult(
                    False, checked, expected_seq, f"sequence {expected_seq} is missing"
                )
            if event["prev_hash"] != prev_hash:
                return VerifyResult(False, checked, seq, "link to the previous event is broken")
            event["at"] = format_time(event["at"])
            if event_hash(event) != event["hash"]:
                return VerifyResult(False, checked, seq, "content does not match its hash")
            prev_hash, expected_seq, last_seq = event["hash"], seq + 1, seq
            checked += 1
