"""What every fake HTTP service of the tests is built from: a uvicorn thread on a free port, a
start/stop lifecycle, streamed answers that notice the client leaving, and the one fault model.

Every fake takes the same ``Fault``s, queued with ``inject``: an HTTP error status (with
``Retry-After``), a hang before the first byte, a slow first token or slow pieces, a connection
dropped after N pieces, an in-stream error or a malformed piece after N pieces, or a body that
ends cleanly but unfinished after N pieces. What a "piece"
is and what an error looks like on the wire are the fake's (an OpenAI chunk, an Anthropic
content delta, 50 ms of speech); how faults are queued, matched and played is shared here.

Deliberately light: it imports neither the app nor its models, so a fake starts in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now.

    The twin of ``voxdialog.testing.server.free_port``, which imports the whole app (seconds).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DroppedConnection(Exception):
    """Raised inside a fake's stream to make uvicorn cut the connection mid-body."""


@dataclass(slots=True)
class Fault:
    """How the next matching request misbehaves; queue it with ``FakeServer.inject``.

    A request takes the first queued fault whose ``path`` matches; a fault can combine several
    misbehaviours (a slow first token, then a drop). Counts are of the fake's content pieces.

    Attributes:
        status: Answer this HTTP status with the fake's error body instead of a reply.
        retry_after: A ``Retry-After`` header value sent with ``status``.
        retry_after_ms: A ``retry-after-ms`` header value (OpenAI's) sent with ``status``.
        error_type: The error's type (Anthropic: ``overloaded_error``) or code (OpenAI: ``"502"``)
            in the error body or in-stream error; ``None``: the fake's default.
        message: The error's message; ``None``: the fake's default.
        hang: Read the request, then send nothing at all until the client goes away.
        first_token_delay_s: Send the headers (and any preamble) at once, the first piece later.
        chunk_delay_s: Pause before each later piece (a slow stream); 0: the fake's own pace.
        drop_after: Drop the connection after this many pieces.
        error_after: Send an in-stream error after this many pieces, then end.
        malformed_after: Send a broken piece after this many pieces (then go on).
        end_after: End the body cleanly after this many pieces: no finish reason, no end event,
            no ``[DONE]`` (a proxy or a crashing provider cutting the answer short); 0 sends
            only what precedes the first piece (an SSE keep-alive comment, if the fake has one).
        path: Only requests whose path contains this; ``None``: any.
        times: How many requests it hits; ``None``: every one until ``clear_faults``.
    """

    status: int | None = None
    retry_after: str | None = None
    retry_after_ms: int | None = None
    error_type: str | None = None
    message: str | None = None
    hang: bool = False
    first_token_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    drop_after: int | None = None
    error_after: int | None = None
    malformed_after: int | None = None
    end_after: int | None = None
    path: str | None = None
    times: int | None = 1

    def retry_headers(self) -> dict[str, str]:
        """The ``Retry-After`` and ``retry-after-ms`` headers of a ``status`` answer."""
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.retry_after_ms)
        return headers


#: The fault of a request no queued fault matched.
NO_FAULT = Fault()


@dataclass(frozen=True, slots=True)
class Piece:
    """One frame of a streamed answer; only ``content`` pieces count for a fault's N."""

    data: str | bytes
    content: bool = True


def _not_a_dropped_connection(record: logging.LogRecord) -> bool:
    """Keep uvicorn's log quiet about connections a fake dropped on purpose."""
    return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


class AppThread:
    """An ASGI app served by uvicorn on a free 127.0.0.1 port, in a daemon thread.

    Args:
        app: The app to serve.
        name: The thread's name (and the server's, in errors).
        uvicorn_options: More ``uvicorn.Config`` arguments, or other values for its defaults
            here (no lifespan, no log config, one second of graceful shutdown).
    """

    def __init__(self, app: ASGIApp, *, name: str = "fake-server", **uvicorn_options: Any) -> None:
        uvicorn_log = logging.getLogger("uvicorn.error")
        if _not_a_dropped_connection not in uvicorn_log.filters:
            uvicorn_log.addFilter(_not_a_dropped_connection)
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        options: dict[str, Any] = {
            "log_config": None,
            "lifespan": "off",
            # A hung handler must not keep a test waiting at shutdown.
            "timeout_graceful_shutdown": 1,
            **uvicorn_options,
        }
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), name=name, daemon=True
        )

    def start(self, *, timeout_s: float = 10.0) -> None:
        """Start serving; block until the socket listens."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Ask uvicorn to exit and wait for it; force it out if it takes longer."""
        if not self._thread.is_alive():
            return
        self._server.should_exit = True
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=timeout_s)


class FakeServer:
    """A fake service in its own thread: a context manager, or ``start()`` and ``stop()``.

    Args:
        app: The fake's routes.
        name: The server thread's name.
        uvicorn_options: As for `AppThread`.
    """

    def __init__(self, app: ASGIApp, *, name: str = "fake-server", **uvicorn_options: Any) -> None:
        self._thread = AppThread(app, name=name, **uvicorn_options)
        #: Set on ``stop()``, so handlers that hang on purpose give up.
        self._closing = threading.Event()
        #: Faults waiting for requests, in order (see ``inject``).
        self.faults: list[Fault] = []
        self._fault_lock = threading.Lock()
        #: Streams sent to their end, and streams that ended early (client gone or dropped).
        self.streams_completed = 0
        self.streams_aborted = 0

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each request takes the first one that matches its path."""
        with self._fault_lock:
            self.faults.extend(faults)

    def clear_faults(self) -> None:
        """Drop every queued fault and zero the stream counters."""
        with self._fault_lock:
            self.faults.clear()
        self.streams_completed = self.streams_aborted = 0

    def take_fault(self, path: str) -> Fault:
        """The fault for a request to ``path`` (``NO_FAULT`` if none is queued for it)."""
        with self._fault_lock:
            for fault in self.faults:
                if fault.path is not None and fault.path not in path:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return NO_FAULT

    async def fault_answer(
        self,
        request: Request,
        fault: Fault,
        error_body: Callable[[Fault], object],
        *,
        on_disconnect: Callable[[], None] | None = None,
    ) -> Response | None:
        """The answer a ``hang`` or ``status`` fault gives instead of a reply, else None.

        Args:
            request: The request being answered.
            fault: Its fault.
            error_body: The fake's error JSON for a ``status`` fault.
            on_disconnect: Called when a hung request's client goes away.
        """
        if fault.hang:
            if await wait_for_disconnect(request, self._closing) and on_disconnect is not None:
                on_disconnect()
            return Response(status_code=504)
        if fault.status is not None:
            return JSONResponse(
                error_body(fault), status_code=fault.status, headers=fault.retry_headers()
            )
        return None

    async def counted(self, frames: AsyncGenerator[Any, None]) -> AsyncIterator[Any]:
        """``frames``, counted as a completed stream if they all went out, else as aborted."""
        finished = False
        try:
            async with aclosing(frames):
                async for frame in frames:
                    yield frame
            finished = True
        finally:
            if finished:
                self.streams_completed += 1
            else:
                self.streams_aborted += 1

    async def wait_for_abort(self, *, count: int = 1, timeout_s: float = 5.0) -> bool:
        """Wait (in any loop) until ``count`` streams ended early; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.streams_aborted < count:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    @property
    def port(self) -> int:
        """The port it serves on (127.0.0.1)."""
        return self._thread.port

    def start(self) -> None:
        """Start serving; returns once the port accepts connections."""
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


class LiveStream(StreamingResponse):
    """Streams pieces while listening for the client leaving, and calls ``on_disconnect`` if it
    leaves before the end.

    A ``DroppedConnection`` raised by the pieces leaves the body unfinished, and uvicorn
    closes a connection whose app returned mid-body.
    """

    def __init__(
        self,
        pieces: AsyncIterator[str | bytes],
        *,
        media_type: str,
        on_disconnect: Callable[[], None],
    ) -> None:
        super().__init__(pieces, media_type=media_type)
        self._on_disconnect = on_disconnect

    async def _send_all(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for piece in self.body_iterator:
            body = piece.encode() if isinstance(piece, str) else piece
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def client_left() -> None:
            message: Message = {}
            while message.get("type") != "http.disconnect":
                message = await receive()

        sender = asyncio.ensure_future(self._send_all(send))
        listener = asyncio.ensure_future(client_left())
        done, _ = await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
        if listener in done and not sender.done():
            self._on_disconnect()
        for task in (sender, listener):
            task.cancel()
        await asyncio.gather(sender, listener, return_exceptions=True)
        # A body left mid-way is closed now, so its stream counts as aborted at once.
        if isinstance(self.body_iterator, AsyncGenerator):
            await self.body_iterator.aclose()


async def play(
    pieces: Iterable[Piece],
    fault: Fault,
    *,
    delay_s: float = 0.0,
    error: str | bytes = b"",
    malformed: str | bytes = b"",
    keepalive: str | bytes | None = None,
) -> AsyncGenerator[str | bytes, None]:
    """Stream ``pieces`` with ``fault`` played on them.

    Before each content piece: the pause (``first_token_delay_s`` before the first,
    ``chunk_delay_s`` or else ``delay_s`` before the others), then a drop, an ``error`` piece
    that ends the stream, a ``malformed`` piece or a clean but unfinished end, once
    ``drop_after``, ``error_after``, ``malformed_after`` or ``end_after`` content pieces went
    out.

    Args:
        pieces: The answer.
        fault: The request's fault.
        delay_s: The fake's own pause before each content piece after the first.
        error: The fake's in-stream error piece.
        malformed: The fake's broken piece.
        keepalive: Sent every 0.1 s of the first pause (an SSE comment, as OpenRouter does).

    Raises:
        DroppedConnection: At ``drop_after``.
    """
    sent = 0
    for piece in pieces:
        if piece.content:
            pause = fault.first_token_delay_s if sent == 0 else fault.chunk_delay_s or delay_s
            if keepalive is not None and sent == 0:
                end = time.monotonic() + pause
                while (left := end - time.monotonic()) > 0:
                    yield keepalive
                    await asyncio.sleep(min(0.1, left))
            elif pause > 0:
                await asyncio.sleep(pause)
            if sent == fault.drop_after:
                raise DroppedConnection("injected disconnect")
            if sent == fault.end_after:
                if keepalive is not None and sent == 0:
                    yield keepalive  # the one sign of life before the end
                return
            if sent == fault.error_after:
                yield error
                return
            if sent == fault.malformed_after:
                yield malformed
            sent += 1
        yield piece.data
