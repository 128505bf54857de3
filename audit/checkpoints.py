"""Writing signed checkpoints of the chain head and exporting them outside the database.

Only the checkpoint job (``audit.tasks.write_checkpoint``, run by the django-q2 worker) calls
``checkpoint_create``: it is the only process that needs the private key. A checkpoint only ever
extends a chain that verifies: the events since the previous checkpoint are walked first, and a
chain that does not verify (or that lost its tail) is refused rather than signed, so a rewrite
can never be laundered into a fresh signature.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import conf, selectors
from audit.chain import format_time
from audit.checkpoint_store import CheckpointStore, DirectoryStore, S3Store
from audit.models import AuditCheckpoint
from audit.signing import generate_key_pair, load_private_key, sign_checkpoint

logger = logging.getLogger(__name__)


class CheckpointRefused(Exception):
    """The chain does not verify from the last checkpoint; nothing was signed."""


@dataclass(frozen=True)
class CheckpointOutcome:
    created: bool
    seq: int | None
    detail: str
    exported_to: list[str] = field(default_factory=list)


def stores() -> list[CheckpointStore]:
    """The configured export targets: always the directory, S3 when a bucket is set."""
    targets: list[CheckpointStore] = [DirectoryStore(conf.checkpoint_dir())]
    s3 = conf.s3_config()
    if s3 is not None:
        targets.append(S3Store(s3))
    return targets


def ensure_signing_key() -> Path:
    """The private key's path; creates the demo key pair in var/ when none was configured."""
    path = conf.signing_key_file()
    if path.exists():
        return path
    if not conf.signing_key_is_default():
        raise ImproperlyConfigured(f"BC_AUDIT_SIGNING_KEY_FILE points at {path}, which is missing")
    try:
        key_id = generate_key_pair(path, conf.public_key_file())
    except FileExistsError:  # another worker made it a moment ago
        return path
    logger.warning(
        "created an audit signing key (id %s) in %s: fine for a demo; in production create one "
        "with 'manage.py audit_keygen' and keep the private key on the worker only",
        key_id,
        path,
    )
    return path


def checkpoint_create(*, now: datetime | None = None) -> CheckpointOutcome:
    """Sign the current chain head, export it everywhere configured, then record it."""
    top = selectors.head()
    if top is None:
        return CheckpointOutcome(False, None, "no events yet")
    last = selectors.latest_checkpoint()
    if last is not None and last.seq == top["seq"]:
        return CheckpointOutcome(False, last.seq, "chain head already checkpointed")
    if last is not None and last.seq > top["seq"]:
        raise CheckpointRefused(
            f"missing tail after seq {top['seq']}: checkpoint {last.seq} covers events that are "
            "gone (restored from an old backup?); not signing"
        )
    # Incremental: start at the last checkpointed event, pinned to its signed hash.
    if last is None:
        result = selectors.walk_db(upto=top["seq"])
    else:
        result = selectors.walk_db(
            start=last.seq, upto=top["seq"], prev_hash=None, checkpoints={last.seq: last.hash}
        )
    if not result.ok:
        raise CheckpointRefused(
            f"chain does not verify at seq {result.first_bad_seq}: {result.reason}; not signing"
        )
    key = load_private_key(ensure_signing_key())
    document = sign_checkpoint(
        key, seq=top["seq"], hash=top["hash"], at=format_time(now or timezone.now())
    )
    exported = []
    for store in stores():
        # A retried job finds its own earlier export and keeps that (already signed) document.
        document = store.put(document)
        exported.append(store.describe())
    try:
        with transaction.atomic():
            AuditCheckpoint.objects.create(
                seq=document["seq"],
                hash=document["hash"],
                at=datetime.fromisoformat(document["at"]),
                key_id=document["key_id"],
                signature=document["signature"],
                exported_to=exported,
            )
    except IntegrityError:
        return CheckpointOutcome(False, document["seq"], "recorded by another worker", exported)
    logger.info("audit checkpoint at seq %s exported to %s", document["seq"], ", ".join(exported))
    return CheckpointOutcome(True, document["seq"], "checkpoint written", exported)
