"""Checkpoints in S3-compatible object storage with Object Lock, against moto's server mode.

moto runs as a real HTTP server on 127.0.0.1, so boto3 goes through its whole stack: signing,
checksums, Object Lock headers and the conditional write that refuses to replace a key.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from audit.checkpoint_store import object_name
from audit.checkpoints import checkpoint_create
from audit.verification import verify_all

BUCKET = "bc-audit-checkpoints"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = f"{BUCKET}-{_free_port()}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    settings.BC_AUDIT_S3_BUCKET = bucket
    settings.BC_AUDIT_S3_ENDPOINT_URL = moto_endpoint
    settings.BC_AUDIT_S3_PREFIX = "audit/checkpoints/"
    settings.BC_AUDIT_S3_RETENTION_DAYS = 30
    client.bucket = bucket
    return client


@pytest.mark.django_db
def test_checkpoint_lands_in_s3_under_compliance_retention(s3, append, signing_keys):
    append(3)
    outcome = checkpoint_create()
    assert any(target.startswith("s3://") for target in outcome.exported_to)
    key = "audit/checkpoints/" + object_name(3)
    head = s3.head_object(Bucket=s3.bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    retain = head["ObjectLockRetainUntilDate"]
    assert retain > datetime.now(UTC) + timedelta(days=29)
    # Locked: the version cannot be deleted, not even by the bucket owner.
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=s3.bucket, Key=key, VersionId=head["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.django_db
def test_verify_reads_s3_and_catches_a_restored_backup(
    s3, append, signing_keys, tamper, audit_storage
):
    append(5)
    checkpoint_create()
    assert verify_all().ok
    # The database and the local directory are both lost and restored from an old state;
    # the object store keeps what was signed.
    tamper.execute("DELETE FROM audit_auditevent WHERE seq > 2")
    for path in (audit_storage / "checkpoints").glob("*.json"):
        path.chmod(0o644)
        path.unlink()
    report = verify_all()
    assert report.missing_tail_after == 2
    assert any(source.startswith("s3://") for source in report.checkpoints.sources)


@pytest.mark.django_db
def test_s3_refuses_a_different_checkpoint_for_the_same_seq(s3, append, signing_keys):
    from audit import conf
    from audit.checkpoint_store import CheckpointConflict, S3Store
    from audit.signing import load_private_key, sign_checkpoint

    store = S3Store(conf.s3_config())
    key = load_private_key(signing_keys[0])
    first = sign_checkpoint(key, seq=9, hash="a" * 64, at="2026-01-01T00:00:00.000000+00:00")
    store.put(first)
    assert store.put(dict(first)) == first  # a retried job
    with pytest.raises(CheckpointConflict):
        store.put(sign_checkpoint(key, seq=9, hash="b" * 64, at=first["at"]))


@pytest.mark.django_db
def test_unreachable_s3_is_reported_not_raised(settings, append, signing_keys):
    settings.BC_AUDIT_S3_BUCKET = "nowhere"
    settings.BC_AUDIT_S3_ENDPOINT_URL = f"http://127.0.0.1:{_free_port()}"
    append(1)
    report = verify_all()
    assert not report.ok and any("cannot list" in p for p in report.checkpoints.problems)
