"""Request guard (pure ASGI): per-IP rate limit and a body-size cap on every HTTP request."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxdialog.api.errors import error_body
from voxdialog.security.ratelimit import Limit, RateLimiterUnavailable

# Uploads stream through their own byte and duration limits (LimitSettings.max_upload_bytes).
_UPLOAD_PATHS = ("/v1/audio/transcriptions",)
# Probes and static files are cheap and must answer even to a busy client.
_EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/static/")


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
        if path.startswith(_UPLOAD_PATHS):
            await self.app(scope, receive, send)
            return
        cap: int = runtime.settings.limits.max_request_bytes
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await _answer(send, 413, f"Request body larger than {cap} bytes.", "request_too_large")
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
                    send, 413, f"Request body larger than {cap} bytes.", "request_too_large"
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


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(
    send: Send, status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> None:
    error_type = "rate_limit_error" if status == 429 else "invalid_request_error"
    body = json.dumps(error_body(message, type=error_type, code=code, param=None)).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
