"""create_app(settings) -> FastAPI; its lifespan opens and closes the Runtime."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

from fastapi import FastAPI, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from voxdialog import __version__
from voxdialog.api.errors import document_errors, install_error_handlers
from voxdialog.api.guard import RequestGuard
from voxdialog.api.idempotency import Idempotency
from voxdialog.api.routes import (
    admin,
    agents,
    audio,
    auth,
    chat,
    client_secrets,
    conversations,
    health,
    models,
    tasks,
    users,
)
from voxdialog.realtime.handler import realtime_endpoint
from voxdialog.runtime import Runtime
from voxdialog.settings import Settings
from voxdialog.web import STATIC_DIR

log = logging.getLogger(__name__)
# While draining, new HTTP requests are told to come back after this many seconds.
_RETRY_AFTER_S = 5


def create_app(
    settings: Settings, *, runtime: Runtime | None = None, load_models: bool = True
) -> FastAPI:
    """The ASGI app. Tests pass their own settings (and may pass a prepared runtime)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime(settings)
        await rt.start(load_models=load_models)
        if rt.new_local_key:
            # Shown once on the console (never in the log): the key to use from other clients.
            sys.stderr.write(
                f"\nVoxDialog local API key (also in {settings.data_dir}"
                f"/local-api-key):\n    {rt.new_local_key}\n\n"
            )
            rt.new_local_key = None
        app.state.runtime = rt
        undo = drain_on_sigterm(rt, settings.shutdown_drain_s)
        try:
            yield
        finally:
            undo()
            await rt.close()

    app = FastAPI(title="VoxDialog", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(client_secrets.router)
    app.include_router(audio.router)
    app.include_router(chat.router)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(agents.router)
    app.include_router(admin.router)
    app.include_router(conversations.router)
    app.include_router(tasks.router)
    document_errors(app)
    # Starlette runs the last added first: the drain gate, then the guard (rate limit, body
    # cap), then idempotency.
    app.add_middleware(Idempotency)
    app.add_middleware(RequestGuard)
    app.add_middleware(DrainGate, app_state=app.state)

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        await realtime_endpoint(ws, app.state.runtime)

    @app.get("/", include_in_schema=False)
    async def talk_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/admin", include_in_schema=False)
    async def admin_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "admin.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


class DrainGate:
    """While the server drains (SIGTERM), every new HTTP request gets 503 with Retry-After.

    Realtime handshakes are refused by the endpoint itself (an error event, then 1013).
    """

    def __init__(self, app: ASGIApp, *, app_state: State) -> None:
        self.app = app
        self._state = app_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime | None = getattr(self._state, "runtime", None)
        if scope["type"] != "http" or runtime is None or not runtime.sessions.draining:
            await self.app(scope, receive, send)
            return
        body = {
            "error": {
                "message": "The server is shutting down; try again shortly.",
                "type": "server_error",
                "code": "server_shutting_down",
            }
        }
        response = JSONResponse(body, status_code=503, headers={"Retry-After": str(_RETRY_AFTER_S)})
        await response(scope, receive, send)


def drain_on_sigterm(runtime: Runtime, drain_s: float) -> Callable[[], None]:
    """Make the first SIGTERM drain before the server exits; returns the undo.

    Draining: new HTTP requests get 503 and new Realtime handshakes a refusal (the port stays
    open, so clients learn why instead of meeting a refused connection); replies in progress
    finish and are stored (up to ``drain_s``); then every live socket gets an error event and
    a 1001 close, and only then is uvicorn's own handler told (it exits as usual). A second
    SIGTERM exits at once. Signals are only handled in the main thread (as uvicorn does), so
    an in-thread test server keeps uvicorn's plain shutdown.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    tasks: set[asyncio.Task[None]] = set()  # held, so the drain is not garbage-collected
    started = asyncio.Event()

    def exit_now(sig: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(sig, frame)

    async def drain_then_exit(sig: int, frame: FrameType | None) -> None:
        log.info(
            "SIGTERM: draining %d live sessions (up to %g s)", len(runtime.sessions.active), drain_s
        )
        try:
            await runtime.sessions.drain(timeout_s=drain_s)
        finally:
            exit_now(sig, frame)

    def start(sig: int, frame: FrameType | None) -> None:
        tasks.add(loop.create_task(drain_then_exit(sig, frame)))

    def on_sigterm(sig: int, frame: FrameType | None) -> None:
        if started.is_set():
            exit_now(sig, frame)
            return
        started.set()
        # A signal handler runs between two bytecodes of the loop's thread: hand over.
        loop.call_soon_threadsafe(start, sig, frame)

    def undo() -> None:
        signal.signal(signal.SIGTERM, previous)

    signal.signal(signal.SIGTERM, on_sigterm)
    return undo
