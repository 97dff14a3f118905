"""Request guard (pure ASGI): per-IP rate limit and a body-size cap on every HTTP request.

Uploads (``POST /v1/audio/transcriptions``) are checked before a byte of their body is read:
a declared ``Content-Length`` over the upload limit gets 413 and a missing or wrong credential
401, both at once, so nobody can make the server spool a large body to disk. A body without a
length (chunked) is cut off with 413 as soon as it passes the limit.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxdialog.api.deps import bearer
from voxdialog.api.errors import error_body
from voxdialog.security.ratelimit import Limit, RateLimiterUnavailable

_UPLOAD_PATHS = ("/v1/audio/transcriptions",)
#: Room for the form fields, part headers and boundaries around the file of an upload: the
#: body may be this much over ``max_upload_bytes`` (``prompt`` alone may take 16 KiB).
UPLOAD_FORM_ALLOWANCE = 64 * 1024
#: What an absurdly long ``Content-Length`` reads as (past 18 digits; no body is that big).
HUGE = 1 << 62
# Probes and static files are cheap and must answer even to a busy client.
_EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/static/")
# An answer given before the body was read ends the connection: the server must not go on
# reading (or a keep-alive client sending) a body nobody will look at.
_CLOSE = {"connection": "close"}


class _BodyTooLarge(Exception):
    """Raised to the app from ``receive`` once the body passes the cap."""


class RequestGuard:
    """Refuses over-limit clients (429) and oversized bodies (413) before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then hand it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime = getattr(scope["app"].state, "runtime", None)
        path: str = scope.get("path", "")
        if runtime is None or path.startswith(_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        retry_after = await self._over_ip_limit(runtime, scope)
        if retry_after is not None:
            await _answer(
                send,
                429,
                "Rate limit reached; slow down.",
                "rate_limit_exceeded",
                {"retry-after": str(retry_after)},
            )
            return
        if scope.get("method") == "POST" and path.startswith(_UPLOAD_PATHS):
            await self._upload(runtime, scope, receive, send)
            return
        cap: int = runtime.settings.limits.max_request_bytes
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await _answer(
                send, 413, f"Request body larger than {cap} bytes.", "request_too_large", _CLOSE
            )
            return
        await self._capped(scope, receive, send, cap)

    async def _over_ip_limit(self, runtime: Any, scope: Scope) -> int | None:
        limits = runtime.settings.rate_limits
        if not limits.enabled:
            return None
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        try:
            decision = await runtime.limiter.hit(f"ip:{ip}", Limit(limits.per_ip, limits.window_s))
        except RateLimiterUnavailable:
            return 1
        return None if decision.allowed else max(1, math.ceil(decision.retry_after_s))

    async def _upload(self, runtime: Any, scope: Scope, receive: Receive, send: Send) -> None:
        """Size, then credential, then the body under the cap: the first two read no body."""
        limit: int = runtime.settings.limits.max_upload_bytes
        cap = limit + UPLOAD_FORM_ALLOWANCE
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await _upload_too_large(send, limit)
            return
        credential = bearer(Request(scope))
        if await runtime.authenticate(credential) is None:
            # The same answer the route's own check gives (api/deps.py get_principal).
            message = (
                "Incorrect API key provided." if credential else "You didn't provide an API key."
            )
            await _answer(
                send, 401, message, "invalid_api_key", {"www-authenticate": "Bearer", **_CLOSE}
            )
            return
        await _streamed_under_cap(self.app, scope, receive, send, cap=cap, limit=limit)

    async def _capped(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        # JSON bodies are small: read the whole body under the cap, then replay it. (Raising
        # from inside the app would reach the app's 500 handler instead of answering 413.)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body = message.get("body", b"")
            size += len(body)
            if size > cap:
                await _answer(
                    send, 413, f"Request body larger than {cap} bytes.", "request_too_large", _CLOSE
                )
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _streamed_under_cap(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, cap: int, limit: int
) -> None:
    """Run the app on a body that streams through, cut off with 413 once it passes ``cap``.

    An upload is too big to buffer here, so the app reads it as it comes. When it passes the
    cap, ``receive`` raises into the app (whose form parser turns that into some error answer)
    and that answer is replaced by the 413.
    """
    received = 0
    over = False
    answered = False

    async def capped_receive() -> Message:
        nonlocal received, over
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                over = True
                raise _BodyTooLarge
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal answered
        if not over:
            await send(message)
        elif message["type"] == "http.response.start" and not answered:
            answered = True
            await _upload_too_large(send, limit)

    try:
        await app(scope, capped_receive, guarded_send)
    except Exception:
        if not over:
            raise
    if over and not answered:
        await _upload_too_large(send, limit)


async def _upload_too_large(send: Send, limit: int) -> None:
    await _answer(
        send,
        413,
        f"File is larger than the {limit} byte limit.",
        "file_too_large",
        _CLOSE,
        param="file",
    )


def _content_length(scope: Scope) -> int | None:
    """The declared body length, or None when there is none (chunked) or it is not a number."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return parse_content_length(value)
    return None


def parse_content_length(value: bytes) -> int | None:
    """A ``Content-Length`` value as a number of bytes, or None when it is not one.

    Only ASCII digits count (``int()`` would also take signs, blanks and underscores); a number
    too long to be a real length reads as ``HUGE``, over every limit.
    """
    text = value.strip(b" \t")
    if not text.isdigit():  # False for b"" too
        return None
    digits = text.lstrip(b"0") or b"0"
    return HUGE if len(digits) > 18 else int(digits)


async def _answer(
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: dict[str, str] | None = None,
    *,
    param: str | None = None,
) -> None:
    error_type = "rate_limit_error" if status == 429 else "invalid_request_error"
    body = json.dumps(error_body(message, type=error_type, code=code, param=param)).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
