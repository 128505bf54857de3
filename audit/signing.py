"""Ed25519 keys and signed checkpoint documents; free of Django like audit/chain.py.

A checkpoint says "the chain's event ``seq`` has hash ``hash``" at time ``at``, signed with a
private key that only the checkpoint worker holds. Anyone with the public key can check it: the
service (``audit_verify``), an auditor offline (``python -m audit.verify``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "bcservice.audit.checkpoint"
VERSION = 1
# The fields the signature covers, in the document; ``signature`` is the only other one.
SIGNED_FIELDS = ("format", "version", "seq", "hash", "at", "key_id")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


class CheckpointFormatError(ValueError):
    """The bytes are not a checkpoint document of a known format."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a key: the start of the SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_key_pair(private_path: Path, public_path: Path) -> str:
    """Write a new key pair (private 0600, public 0644); refuses to overwrite. Returns key id."""
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: never replace a key that signed earlier checkpoints.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(private_path, 0o600)  # whatever the umask was
    public_path.write_bytes(public_pem(key.public_key()))
    os.chmod(public_path, 0o644)
    return key_id(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """All Ed25519 public keys in a PEM file, by key id (several allow key rotation)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for block in _PEM_BLOCK.findall(path.read_bytes()):
        key = serialization.load_pem_public_key(block)
        if isinstance(key, Ed25519PublicKey):
            keys[key_id(key)] = key
    if not keys:
        raise ValueError(f"{path} holds no Ed25519 public key")
    return keys


def signed_bytes(document: Mapping[str, Any]) -> bytes:
    """The exact bytes a checkpoint's signature covers: the signed fields as canonical JSON."""
    body = {name: document.get(name) for name in SIGNED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_checkpoint(private_key: Ed25519PrivateKey, *, seq: int, hash: str, at: str) -> dict:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "seq": seq,
        "hash": hash,
        "at": at,
        "key_id": key_id(private_key.public_key()),
    }
    signature = private_key.sign(signed_bytes(document))
    document["signature"] = base64.b64encode(signature).decode()
    return document


def parse_checkpoint(data: bytes | str | Mapping[str, Any]) -> dict:
    """A checkpoint document from JSON (or a dict), with its shape checked; signature not."""
    try:
        document = dict(data) if isinstance(data, Mapping) else json.loads(data)
    except (ValueError, TypeError) as exc:
        raise CheckpointFormatError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointFormatError("not a bcservice audit checkpoint")
    if document.get("version") != VERSION:
        raise CheckpointFormatError(f"unknown checkpoint version {document.get('version')!r}")
    seq = document.get("seq")
    if type(seq) is not int or seq < 1:
        raise CheckpointFormatError("seq must be a positive integer")
    if not isinstance(document.get("hash"), str) or not _HASH.match(document["hash"]):
        raise CheckpointFormatError("hash must be 64 lowercase hex digits")
    for name in ("at", "key_id", "signature"):
        if not isinstance(document.get(name), str) or not document[name]:
            raise CheckpointFormatError(f"{name} is missing")
    return {name: document[name] for name in (*SIGNED_FIELDS, "signature")}


def signature_problem(
    document: Mapping[str, Any], public_keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    """None when the signature verifies with the key it names; otherwise what is wrong."""
    key = public_keys.get(str(document.get("key_id")))
    if key is None:
        return f"signed with unknown key {document.get('key_id')!r}"
    try:
        signature = base64.b64decode(str(document.get("signature")), validate=True)
        key.verify(signature, signed_bytes(document))
    except (InvalidSignature, ValueError):
        return "signature does not verify: forged or altered checkpoint"
    return None
