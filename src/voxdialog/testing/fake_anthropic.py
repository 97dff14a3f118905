"""FakeAnthropicServer: a local Messages API that streams scripted replies and injects faults.

The fake speaks the real wire protocol (checked with the official ``anthropic`` SDK), so an
HTTP client tested against it is tested against the protocol. ``AppThread`` and ``Fault`` are
shared with the webhook fake.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

#: Header values never recorded (they hold keys).
SECRET_HEADERS = frozenset({"x-api-key", "authorization"})


@dataclass(frozen=True, slots=True)
class Fault:
    """How the next request misbehaves (queue one per request with ``inject``).

    Attributes:
        status: Answer this HTTP status with an error body instead of a reply.
        error_type: The error's ``type`` in that body or in a mid-stream error event.
        retry_after: A ``Retry-After`` header value sent with ``status``.
        hang: Send nothing at all until the client goes away.
        first_token_delay_s: Send the headers (and any preamble) at once, the first token later.
        disconnect_after: Drop the connection after this many content deltas.
        error_event_after: Send an error event after this many content deltas, then end.
    """

    status: int | None = None
    error_type: str = "api_error"
    retry_after: str | None = None
    hang: bool = False
    first_token_delay_s: float = 0.0
    disconnect_after: int | None = None
    error_event_after: int | None = None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request a fake received; key headers hold ``"<redacted>"``, never the key."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A ``tool_use`` block in a scripted reply (``id`` empty: one is made up)."""

    name: str
    input: dict[str, object]
    id: str = ""


@dataclass(frozen=True, slots=True)
class Thinking:
    """A ``thinking`` block in a scripted reply (extended thinking; never to be spoken)."""

    text: str


#: A scripted reply: plain text, or content blocks (a ``str`` item is a text block).
Reply = str | Sequence[str | ToolUse | Thinking]


class DroppedConnection(Exception):
    """Raised inside a fake's stream to make uvicorn cut the connection mid-body."""


def record(request: Request, body: Any) -> RecordedRequest:
    """A ``RecordedRequest`` for ``request``, with key headers redacted."""
    headers = {
        name: "<redacted>" if name in SECRET_HEADERS else value
        for name, value in request.headers.items()
    }
    return RecordedRequest(path=request.url.path, headers=headers, body=body)


async def wait_for_disconnect(
    request: Request, closing: threading.Event, *, timeout_s: float | None = None
) -> bool:
    """Wait until the client goes away or the server stops (True), or ``timeout_s`` passes."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    # ASGI tells of a disconnect only when asked, and the stop flag lives in another thread.
    while not closing.is_set() and not await request.is_disconnected():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def word_pieces(text: str) -> list[str]:
    """``text`` cut after each word, the way models stream it (joined, it is ``text`` again)."""
    pieces: list[str] = re.findall(r"\s*\S+|\s+$", text)
    return pieces


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now.

    The twin of ``voxdialog.testing.server.free_port``, which imports the whole app (seconds).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _not_a_dropped_connection(record: logging.LogRecord) -> bool:
    """Keep uvicorn's log quiet about connections a fake dropped on purpose."""
    return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


class AppThread:
    """An ASGI app served by uvicorn on a free 127.0.0.1 port, in a daemon thread.

    Args:
        app: The app to serve.
    """

    def __init__(self, app: ASGIApp) -> None:
        uvicorn_log = logging.getLogger("uvicorn.error")
        if _not_a_dropped_connection not in uvicorn_log.filters:
            uvicorn_log.addFilter(_not_a_dropped_connection)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="off",
            # A hung handler must not keep a test waiting at shutdown.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), daemon=True
        )

    def start(self, *, timeout_s: float = 10.0) -> None:
        """Start serving; block until the socket listens."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the fake server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self._server.should_exit = True
        self._thread.join(timeout=10)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _blocks(reply: Reply) -> list[str | ToolUse | Thinking]:
    blocks = [reply] if isinstance(reply, str) else list(reply)
    return [
        ToolUse(b.name, b.input, b.id or f"toolu_fake{i:02d}") if isinstance(b, ToolUse) else b
        for i, b in enumerate(blocks)
    ]


def _block_json(block: str | ToolUse | Thinking, *, streaming: bool) -> dict[str, Any]:
    if isinstance(block, ToolUse):
        tool_input = {} if streaming else block.input
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": tool_input}
    if isinstance(block, Thinking):
        text = "" if streaming else block.text
        return {"type": "thinking", "thinking": text, "signature": "" if streaming else "sig"}
    return {"type": "text", "text": "" if streaming else block}


def _deltas(block: str | ToolUse | Thinking) -> list[dict[str, Any]]:
    if isinstance(block, ToolUse):
        arguments = json.dumps(block.input)
        # Small fragments that split keys and values, as the real API does.
        return [
            {"type": "input_json_delta", "partial_json": arguments[i : i + 7]}
            for i in range(0, len(arguments), 7)
        ]
    if isinstance(block, Thinking):
        return [
            *({"type": "thinking_delta", "thinking": p} for p in word_pieces(block.text)),
            {"type": "signature_delta", "signature": "sig"},
        ]
    return [{"type": "text_delta", "text": p} for p in word_pieces(block)]


def _problem(body: Any) -> str | None:
    """What the real API would reject in ``body`` (the checks our client could get wrong)."""
    if not isinstance(body, dict):
        return "body: expected an object"
    if not body.get("model") or not isinstance(body.get("max_tokens"), int):
        return "model and max_tokens: field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    tool_ids: set[str] = set()
    previous = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant") or role == previous:
            return f"messages.{i}: roles must alternate between user and assistant"
        previous = role
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            kind = block.get("type")
            if kind == "text" and not block.get("text"):
                return f"messages.{i}: text content blocks must be non-empty"
            if kind == "tool_use":
                if role != "assistant" or not isinstance(block.get("input"), dict):
                    return f"messages.{i}: tool_use must be an assistant block with an input"
                tool_ids.add(block["id"])
            if kind == "tool_result" and block.get("tool_use_id") not in tool_ids:
                return f"messages.{i}: tool_result for an unknown tool_use_id"
    return None


class FakeAnthropicServer:
    """A local ``POST /v1/messages`` answering each request with the next scripted reply.

    Args:
        replies: One per request; when they run out, the last one repeats.
        api_key: When set, requests without it (as ``x-api-key`` or ``Authorization: Bearer``,
            which SDK 2.x sends) get 401 ``authentication_error``.
        delta_s: Delay before each content delta (to test cancellation mid-stream).

    Use it as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = ("Hello there.",),
        *,
        api_key: str | None = None,
        delta_s: float = 0.0,
    ) -> None:
        self._replies: deque[Reply] = deque(replies)
        self._faults: deque[Fault] = deque()
        self._api_key = api_key
        self.delta_s = delta_s
        self._closing = threading.Event()
        #: Every request received, in order (key headers redacted).
        self.requests: list[RecordedRequest] = []
        #: Streams sent to their end, and streams that ended early (client gone or dropped).
        self.streams_completed = 0
        self.streams_aborted = 0
        app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])
        self._thread = AppThread(app)
        #: The base URL to hand a client (``…/v1/messages`` is below it).
        self.url = self._thread.base_url

    def reset(self, replies: Iterable[Reply] = ("Hello there.",), *, delta_s: float = 0.0) -> None:
        """Forget requests, faults and counters; script new replies."""
        self._replies = deque(replies)
        self._faults.clear()
        self.requests.clear()
        self.delta_s = delta_s
        self.streams_completed = self.streams_aborted = 0

    def inject(self, *faults: Fault) -> None:
        """Queue faults: each of the next requests gets one, in order."""
        self._faults.extend(faults)

    def start(self) -> None:
        """Start serving on a free port."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving (hung handlers give up)."""
        self._closing.set()
        self._thread.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _next_reply(self) -> Reply:
        if len(self._replies) > 1:
            return self._replies.popleft()
        return self._replies[0] if self._replies else ""

    async def _messages(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(record(request, body))
        if self._api_key is not None and self._api_key not in (
            request.headers.get("x-api-key"),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        ):
            error = _error_body("authentication_error", "invalid x-api-key")
            return JSONResponse(error, status_code=401)
        if "anthropic-version" not in request.headers:
            error = _error_body("invalid_request_error", "anthropic-version: header is required")
            return JSONResponse(error, status_code=400)
        fault = self._faults.popleft() if self._faults else Fault()
        if fault.hang:
            await wait_for_disconnect(request, self._closing)
            return Response(status_code=504)
        if fault.status is not None:
            headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
            error = _error_body(fault.error_type, f"injected {fault.status}")
            return JSONResponse(error, status_code=fault.status, headers=headers)
        problem = _problem(body)
        if problem is not None:
            error = _error_body("invalid_request_error", problem)
            return JSONResponse(error, status_code=400)
        blocks = _blocks(self._next_reply())
        uses_tools = any(isinstance(b, ToolUse) for b in blocks)
        message = {
            "id": "msg_fake01",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [_block_json(b, streaming=False) for b in blocks],
            "stop_reason": "tool_use" if uses_tools else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 7},
        }
        if not body.get("stream"):
            return JSONResponse(message)
        events = self._events(message, blocks, fault)
        return StreamingResponse(events, media_type="text/event-stream")

    async def _events(
        self, message: dict[str, Any], blocks: list[str | ToolUse | Thinking], fault: Fault
    ) -> AsyncIterator[str]:
        finished = False
        try:
            start = {**message, "content": [], "stop_reason": None}
            start["usage"] = {"input_tokens": 12, "output_tokens": 1}
            yield _sse("message_start", {"type": "message_start", "message": start})
            yield _sse("ping", {"type": "ping"})
            if fault.first_token_delay_s:
                await asyncio.sleep(fault.first_token_delay_s)
            sent = 0
            for index, block in enumerate(blocks):
                content_block = _block_json(block, streaming=True)
                yield _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": content_block},
                )
                for delta in _deltas(block):
                    if sent == fault.disconnect_after:
                        raise DroppedConnection("injected disconnect")
                    if sent == fault.error_event_after:
                        error = _error_body(fault.error_type, "injected stream error")
                        yield _sse("error", error)
                        finished = True
                        return
                    if self.delta_s:
                        await asyncio.sleep(self.delta_s)
                    event = {"type": "content_block_delta", "index": index, "delta": delta}
                    yield _sse("content_block_delta", event)
                    sent += 1
                yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
            yield _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": 7},
                },
            )
            yield _sse("message_stop", {"type": "message_stop"})
            finished = True
        finally:
            if finished:
                self.streams_completed += 1
            else:
                self.streams_aborted += 1
