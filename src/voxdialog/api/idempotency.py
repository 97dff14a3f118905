"""``Idempotency-Key`` on the app API's writes (pure ASGI): a retry is answered, not redone.

A client that lost the answer to ``POST /api/tasks`` (a dropped connection, a server restart)
sends the same request again with the same key and gets the first answer (with
``Idempotent-Replayed: true``) instead of a second task. Keys belong to the credential that
used them and are kept 24 hours. The same key with a different request is refused (422); a
retry while the first request is still being handled, or whose outcome was lost in a crash,
gets 409 (the write may or may not have happened: use a new key only after checking). A
request the server failed (5xx) releases its key, so the retry runs afresh.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxdialog.api.errors import error_body
from voxdialog.db.engine import Database
from voxdialog.db.repos.idempotency import (
    Claimed,
    InProgress,
    Mismatch,
    Replay,
    claim_key,
    finish_key,
    release_key,
)

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PREFIX = "/api/"
_MAX_KEY = 255
#: Answers larger than this are not kept (the app API's answers are far smaller).
_MAX_STORED = 256 * 1024


class Idempotency:
    """Replays the stored answer of a write retried with the same ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle a keyed write once; pass everything else through."""
        key, owner = _key_and_owner(scope)
        runtime = getattr(scope["app"].state, "runtime", None) if key is not None else None
        if key is None or owner is None or runtime is None:
            await self.app(scope, receive, send)
            return
        if not 0 < len(key) <= _MAX_KEY or not key.isprintable():
            await _answer(
                send, 400, "invalid_value", f"Idempotency-Key must be 1-{_MAX_KEY} characters."
            )
            return
        body = await _read_body(receive)
        fingerprint = _fingerprint(scope, body)
        match await claim_key(runtime.db, owner, key, fingerprint):
            case Replay(status=status, content_type=content_type, body=stored):
                await _replay(send, status, content_type, stored)
            case Mismatch():
                await _answer(
                    send,
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for another request.",
                )
            case InProgress():
                await _answer(
                    send,
                    409,
                    "idempotency_key_in_use",
                    "A request with this Idempotency-Key is being handled, or its outcome is "
                    "unknown.",
                )
            case Claimed(row_id=row_id):
                await self._handle(scope, body, send, runtime.db, row_id)

    async def _handle(
        self, scope: Scope, body: bytes, send: Send, db: Database, row_id: str
    ) -> None:
        answer: dict[str, Any] = {"status": 500, "content_type": None, "chunks": []}

        async def replayed_receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["content_type"] = Headers(raw=message.get("headers", [])).get("content-type")
            elif message["type"] == "http.response.body":
                answer["chunks"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replayed_receive, recording_send)
        except BaseException:
            await release_key(db, row_id)
            raise
        stored = b"".join(answer["chunks"])
        if answer["status"] >= 500 or len(stored) > _MAX_STORED:
            await release_key(db, row_id)
            return
        await finish_key(
            db, row_id, answer["status"], answer["content_type"], stored.decode("utf-8", "replace")
        )


def _key_and_owner(scope: Scope) -> tuple[str | None, str | None]:
    """The request's key, and whose it is (a hash of its credential); None where not keyed."""
    if scope["type"] != "http" or scope["method"] not in _WRITES:
        return None, None
    if not scope["path"].startswith(_PREFIX):
        return None, None
    headers = Headers(scope=scope)
    key = headers.get("idempotency-key")
    credential = headers.get("authorization")
    if key is None or not credential:
        # Without a credential there is nobody to keep the key for (a sign-up, a sign-in).
        return None, None
    return key, hashlib.sha256(credential.encode()).hexdigest()


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(
        f"{scope['method']} {scope['path']}?{scope.get('query_string', b'').decode()}\n".encode()
    )
    digest.update(body)
    return digest.hexdigest()


async def _read_body(receive: Receive) -> bytes:
    # The request guard in front of this has already capped the body's size.
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _replay(send: Send, status: int, content_type: str | None, body: str) -> None:
    data = body.encode()
    headers = [(b"content-length", str(len(data)).encode()), (b"idempotent-replayed", b"true")]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    error = error_body(message, type="invalid_request_error", code=code, param="Idempotency-Key")
    await _replay(send, status, "application/json", json.dumps(error))
