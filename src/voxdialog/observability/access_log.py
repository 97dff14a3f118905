"""The HTTP access log: one structured line per request or WebSocket, without credentials.

uvicorn's own access log writes the raw path with its query string, and browsers can only
pass a WebSocket credential there (``?ticket=``, ``?token=``), so it stays off
(``access_log=False``) and this ASGI wrapper writes the line instead: method, path with the
values of secret parameters replaced, status, duration and client address. Bodies and
headers are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from voxdialog.observability.redact import redacted_query

log = logging.getLogger("voxdialog.access")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

# A WebSocket closed before it was accepted is answered 403 by the server (ASGI spec).
_WS_REFUSED = 403
_WS_ACCEPTED = 101


def logged_path(scope: MutableMapping[str, Any]) -> str:
    """The request path with its query string, secret values replaced."""
    path: str = scope.get("path", "")
    query = redacted_query(bytes(scope.get("query_string", b"")).decode("latin-1"))
    return f"{path}?{query}" if query else path


class AccessLog:
    """ASGI middleware around the whole app: logs each HTTP request and WebSocket once.

    Args:
        app: The application to wrap.
        clock: Seconds, monotonic (tests may pass their own).
    """

    def __init__(self, app: AsgiApp, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self._clock = clock

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Pass the call through, noting its status; log one line when it ends."""
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        outcome = _Outcome(kind == "websocket")

        async def noting_send(message: Message) -> None:
            outcome.note(message)
            await send(message)

        started = self._clock()
        try:
            await self.app(scope, receive, noting_send)
        finally:
            self._write(scope, outcome, self._clock() - started)

    def _write(self, scope: MutableMapping[str, Any], outcome: _Outcome, elapsed_s: float) -> None:
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": "WS" if outcome.websocket else scope.get("method", ""),
            "path": logged_path(scope),
            "status": outcome.status,
            "duration_ms": round(elapsed_s * 1000, 1),
            "client": client[0] if client else None,
        }
        if outcome.close_code is not None:
            fields["close_code"] = outcome.close_code
        log.info("request", extra=fields)


class _Outcome:
    """What the app answered: an HTTP status, or a WebSocket's accept and close."""

    def __init__(self, websocket: bool) -> None:
        self.websocket = websocket
        # No response at all: the app failed, and the server answers 500 (HTTP).
        self.status = _WS_REFUSED if websocket else 500
        self.close_code: int | None = None

    def note(self, message: Message) -> None:
        kind = message.get("type")
        if kind in ("http.response.start", "websocket.http.response.start"):
            self.status = int(message.get("status", 0))
        elif kind == "websocket.accept":
            self.status = _WS_ACCEPTED
        elif kind == "websocket.close":
            self.close_code = int(message.get("code", 1000))
