"""Server side of MongoDB's SCRAM-SHA-256 / SCRAM-SHA-1 authentication for the lab simulator.

mockupdb speaks the wire protocol but has no users; without this the lab could only be reached
without credentials, and the connector's authentication and authorization paths (code 18
AuthenticationFailed, code 13 Unauthorized) would never be exercised against a real driver.
This follows RFC 5802 and MongoDB's variant (SCRAM-SHA-1 hashes ``md5(user:mongo:password)``,
``skipEmptyExchange`` finishes in two round trips, speculative authentication rides on the
handshake). Passwords are kept only as salted keys, as a real server stores them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import threading
from dataclasses import dataclass
from typing import Any

ITERATIONS = {"SCRAM-SHA-256": 15000, "SCRAM-SHA-1": 10000}  # mongod's defaults
_DIGEST = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}


class AuthError(Exception):
    """Authentication failed: the reply is mongod's code 18 AuthenticationFailed."""


@dataclass(frozen=True)
class _Keys:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass
class User:
    name: str
    roles: tuple[str, ...]
    keys: dict[str, _Keys]


def _hmac(key: bytes, msg: bytes, digest: str) -> bytes:
    return hmac.new(key, msg, digest).digest()


def _derive(mechanism: str, username: str, password: str) -> _Keys:
    digest = _DIGEST[mechanism]
    if mechanism == "SCRAM-SHA-1":
        # MongoDB's SCRAM-SHA-1 uses the legacy MONGODB-CR digest as the password.
        secret = hashlib.md5(f"{username}:mongo:{password}".encode()).hexdigest().encode()  # noqa: S324
    else:
        secret = password.encode()  # lab passwords are ASCII, for which SASLprep is the identity
    salt = secrets.token_bytes(16 if mechanism == "SCRAM-SHA-1" else 28)
    salted = hashlib.pbkdf2_hmac(digest, secret, salt, ITERATIONS[mechanism])
    client_key = _hmac(salted, b"Client Key", digest)
    return _Keys(
        salt=salt,
        iterations=ITERATIONS[mechanism],
        stored_key=hashlib.new(digest, client_key).digest(),
        server_key=_hmac(salted, b"Server Key", digest),
    )


def _parse(payload: bytes) -> dict[str, str]:
    fields = {}
    for part in payload.decode().split(","):
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = value
    return fields


@dataclass
class _Conversation:
    user: User
    mechanism: str
    nonce: str
    client_first_bare: str
    server_first: str


class ScramServer:
    """Users, their roles, and SASL conversations in progress (thread safe)."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._conversations: dict[int, _Conversation] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add_user(self, name: str, password: str, roles: tuple[str, ...]) -> None:
        keys = {mech: _derive(mech, name, password) for mech in ITERATIONS}
        with self._lock:
            self._users[name] = User(name, tuple(roles), keys)

    def roles(self, name: str) -> tuple[str, ...]:
        user = self._users.get(name)
        return user.roles if user else ()

    def mechanisms_for(self, qualified_name: str) -> list[str] | None:
        """Answer to ``saslSupportedMechs: "admin.user"`` (None when the user does not exist)."""
        _, _, name = qualified_name.partition(".")
        return list(ITERATIONS) if name in self._users else None

    def start(self, mechanism: str, payload: bytes) -> dict[str, Any]:
        """saslStart: parse client-first, answer server-first."""
        if mechanism not in ITERATIONS:
            raise AuthError(f"Received authentication for mechanism {mechanism} which is unknown")
        gs2, _, bare = payload.decode().partition(",,")
        fields = _parse(bare.encode())
        user = self._users.get(fields.get("n", ""))
        if gs2 != "n" or user is None:
            # mongod does not reveal whether the user exists: the same message either way.
            raise AuthError("Authentication failed.")
        keys = user.keys[mechanism]
        nonce = fields["r"] + base64.b64encode(secrets.token_bytes(24)).decode()
        server_first = f"r={nonce},s={base64.b64encode(keys.salt).decode()},i={keys.iterations}"
        with self._lock:
            conversation_id = next(self._ids)
            self._conversations[conversation_id] = _Conversation(
                user, mechanism, nonce, bare, server_first
            )
        return {"conversationId": conversation_id, "done": False, "payload": server_first.encode()}

    def proceed(self, conversation_id: int, payload: bytes) -> tuple[dict[str, Any], str | None]:
        """saslContinue: verify the proof. Returns the reply and the user name once done."""
        with self._lock:
            conv = self._conversations.get(conversation_id)
        if conv is None:
            raise AuthError("No SASL session state found")
        fields = _parse(payload)
        if fields.get("r") != conv.nonce or "p" not in fields:
            raise AuthError("Authentication failed.")
        digest = _DIGEST[conv.mechanism]
        keys = conv.user.keys[conv.mechanism]
        without_proof = payload.decode().rsplit(",p=", 1)[0]
        auth_message = ",".join((conv.client_first_bare, conv.server_first, without_proof)).encode()
        client_signature = _hmac(keys.stored_key, auth_message, digest)
        proof = base64.b64decode(fields["p"])
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=False))
        if not hmac.compare_digest(hashlib.new(digest, client_key).digest(), keys.stored_key):
            with self._lock:
                self._conversations.pop(conversation_id, None)
            raise AuthError("Authentication failed.")
        server_signature = base64.b64encode(_hmac(keys.server_key, auth_message, digest))
        with self._lock:
            self._conversations.pop(conversation_id, None)
        # The client asked for skipEmptyExchange, so the conversation ends here.
        reply = {
            "conversationId": conversation_id,
            "done": True,
            "payload": b"v=" + server_signature,
        }
        return reply, conv.user.name
