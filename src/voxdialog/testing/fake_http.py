"""What every fake HTTP service of the tests is built from: a uvicorn thread on a free port, a
start/stop lifecycle, and streamed answers that notice the client leaving.

Deliberately light: it imports neither the app nor its models, so a fake starts in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.requests import Request
from starlette.responses import StreamingResponse
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

    ``hang`` sends nothing at all; ``abort`` drops the connection after the last piece
    instead of ending the body (uvicorn closes a connection whose app returned mid-body).
    """

    def __init__(
        self,
        pieces: AsyncIterator[bytes],
        *,
        media_type: str,
        on_disconnect: Callable[[], None],
        hang: bool = False,
        abort: bool = False,
    ) -> None:
        super().__init__(pieces, media_type=media_type)
        self._on_disconnect = on_disconnect
        self._hang = hang
        self._abort = abort

    async def _send_all(self, send: Send) -> None:
        if self._hang:
            await asyncio.Event().wait()
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for piece in self.body_iterator:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        if not self._abort:
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
