"""create_app(settings) -> FastAPI; its lifespan opens and closes the Runtime."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from voxdialog import __version__
from voxdialog.api.errors import document_errors, install_error_handlers
from voxdialog.api.guard import RequestGuard
from voxdialog.api.routes import (
    admin,
    agents,
    audio,
    auth,
    chat,
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
        try:
            yield
        finally:
            await rt.close()

    app = FastAPI(title="VoxDialog", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(audio.router)
    app.include_router(chat.router)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(agents.router)
    app.include_router(admin.router)
    app.include_router(conversations.router)
    app.include_router(tasks.router)
    document_errors(app)
    app.add_middleware(RequestGuard)

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
