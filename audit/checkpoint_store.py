"""Where signed checkpoints are exported, outside the database: a directory and object storage.

Both are append-only by construction. The directory store creates each file once (a private
temporary file, then a hard link that fails if the name exists, so a reader never sees half a
file and nothing is overwritten). The S3 store writes each object with an Object Lock retention
(COMPLIANCE by default: not even the bucket owner can delete or shorten it) and asks the server
not to replace an existing key. Writing the same checkpoint twice is harmless (a retried job);
a different checkpoint for the same sequence number is refused as a conflict.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from audit.conf import S3Config
from audit.signing import CheckpointFormatError, parse_checkpoint

logger = logging.getLogger(__name__)


class CheckpointConflict(Exception):
    """A different checkpoint already exists for this sequence number."""


class StoreError(Exception):
    """The store could not be read or written (unreachable, permissions, misconfigured)."""


@dataclass(frozen=True)
class Found:
    """One exported checkpoint as read back: the document, or why it could not be read."""

    location: str
    document: dict | None
    error: str = ""


class CheckpointStore(Protocol):
    label: str

    def describe(self) -> str: ...

    def put(self, document: dict) -> dict: ...

    def read(self) -> tuple[list[Found], int]: ...


def object_name(seq: int) -> str:
    # Zero-padded so that names sort in sequence order, in a listing and in a shell.
    return f"checkpoint-{seq:015d}.json"


def encode(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, indent=2).encode() + b"\n"


def _same(existing: dict, document: dict) -> dict:
    if (existing["seq"], existing["hash"]) != (document["seq"], document["hash"]):
        raise CheckpointConflict(
            f"checkpoint for seq {document['seq']} already exported with hash "
            f"{existing['hash']}, refusing {document['hash']}"
        )
    return existing


class DirectoryStore:
    label = "dir"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"dir:{self.path}"

    def put(self, document: dict) -> dict:
        """Create the checkpoint's file; returns the document now stored under its name."""
        self.path.mkdir(parents=True, exist_ok=True)
        final = self.path / object_name(document["seq"])
        temp = self.path / f".{final.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(encode(document))
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp, final)  # atomic, and fails rather than replace
            except FileExistsError:
                return _same(parse_checkpoint(final.read_bytes()), document)
        finally:
            temp.unlink(missing_ok=True)
        self._sync_dir()
        return document

    def _sync_dir(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some filesystems refuse fsync on a directory; the file itself is synced
        finally:
            os.close(fd)

    def read(self) -> tuple[list[Found], int]:
        """Every checkpoint file (a directory is cheap to read in full); coverage from seq 0."""
        if not self.path.is_dir():
            return [], 0
        found = []
        for path in sorted(self.path.glob("checkpoint-*.json")):
            try:
                found.append(Found(str(path), parse_checkpoint(path.read_bytes())))
            except (OSError, CheckpointFormatError) as exc:
                found.append(Found(str(path), None, str(exc)))
        return found, 0


class S3Store:
    label = "s3"

    def __init__(self, config: S3Config, client: Any = None) -> None:
        self.config = config
        self._client = client

    def describe(self) -> str:
        return f"s3://{self.config.bucket}/{self.config.prefix}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.config.endpoint_url,
                region_name=self.config.region,
                aws_access_key_id=self.config.access_key_id,
                aws_secret_access_key=self.config.secret_access_key,
                config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3}),
            )
        return self._client

    def key(self, seq: int) -> str:
        return self.config.prefix + object_name(seq)

    def put(self, document: dict) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        retain = datetime.now(UTC) + timedelta(days=self.config.retention_days)
        key = self.key(document["seq"])
        try:
            self.client.put_object(
                Bucket=self.config.bucket,
                Key=key,
                Body=encode(document),
                ContentType="application/json",
                ObjectLockMode=self.config.lock_mode,
                ObjectLockRetainUntilDate=retain,
                ChecksumAlgorithm="SHA256",  # Object Lock writes need an integrity header
                IfNoneMatch="*",
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                return _same(self._get(key), document)
            raise StoreError(f"{self.describe()}: cannot write {key}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{self.describe()}: cannot write {key}: {exc}") from exc
        return document

    def _get(self, key: str) -> dict:
        body = self.client.get_object(Bucket=self.config.bucket, Key=key)["Body"].read()
        return parse_checkpoint(body)

    def keys(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.config.bucket, Prefix=self.config.prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(k for k in keys if k.endswith(".json"))

    def read(self) -> tuple[list[Found], int]:
        """The newest ``verify_latest`` checkpoints; coverage starts at the oldest one read."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            keys = self.keys()[-self.config.verify_latest :]
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"{self.describe()}: cannot list: {exc}") from exc
        found, lowest = [], 0
        for key in keys:
            location = f"s3://{self.config.bucket}/{key}"
            try:
                document = self._get(key)
            except (BotoCoreError, ClientError, CheckpointFormatError) as exc:
                found.append(Found(location, None, str(exc)))
                continue
            found.append(Found(location, document))
            lowest = document["seq"] if not lowest else min(lowest, document["seq"])
        return found, lowest


def iter_documents(found: list[Found]) -> Iterator[tuple[str, dict]]:
    for item in found:
        if item.document is not None:
            yield item.location, item.document
