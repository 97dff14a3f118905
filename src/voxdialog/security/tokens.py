"""Short-lived signed tokens for browser pages (HMAC-SHA256 over a JSON payload).

The page served by the server cannot hold the API key; it asks for a token that is good for a
few minutes and for one purpose (``typ``), signed with a random key kept in the data dir.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from voxdialog.brain.base import Scope

_PREFIX = "vxt"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token says."""

    scope: Scope
    typ: str
    expires_at: int


def load_or_create_secret(path: Path) -> bytes:
    """A 32-byte random key stored at ``path`` with mode 0600 (created on first use)."""
    if path.exists():
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and checks short-lived tokens."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("token key must be at least 32 bytes")
        self._key = key

    def issue(self, scope: Scope, *, typ: str, ttl_s: int) -> str:
        """A token for ``scope`` and purpose ``typ``, valid ``ttl_s`` seconds."""
        payload = {
            "t": scope.tenant_id,
            "u": scope.user_id,
            "typ": typ,
            "exp": int(time.time()) + ttl_s,
            "n": secrets.token_hex(8),
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{_PREFIX}.{body}.{self._sign(body)}"

    def verify(self, token: str, *, typ: str) -> TokenClaims | None:
        """The claims of a valid, unexpired token of purpose ``typ``; else None."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        body, signature = parts[1], parts[2]
        if not hmac.compare_digest(self._sign(body), signature):
            return None
        try:
            payload = json.loads(_unb64(body))
            claims = TokenClaims(
                Scope(str(payload["t"]), str(payload["u"])),
                str(payload["typ"]),
                int(payload["exp"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if claims.typ != typ or claims.expires_at < time.time():
            return None
        return claims

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, f"{_PREFIX}.{body}".encode(), hashlib.sha256).digest())
