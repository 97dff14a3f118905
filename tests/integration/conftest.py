"""A real server on a free port, shared by the integration tests (models load once)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from voxdialog.app import create_app
from voxdialog.settings import Settings


@dataclass(frozen=True, slots=True)
class LiveServer:
    """Where the test server listens and how to reach it."""

    base_url: str
    ws_url: str
    api_key: str
    data_dir: Path
    settings: Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Start the server in-process on a background thread, one per test module (own data)."""
    data_dir = tmp_path_factory.mktemp("server-data")
    port = _free_port()
    settings = Settings(data_dir=data_dir, host="127.0.0.1", port=port)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        ws_max_size=settings.limits.ws_frame_limit_bytes,
        ws_per_message_deflate=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        server.should_exit = True
        raise RuntimeError("test server did not become ready")
    key = (data_dir / "local-api-key").read_text().strip()
    yield LiveServer(
        base_url=base,
        ws_url=f"ws://127.0.0.1:{port}",
        api_key=key,
        data_dir=data_dir,
        settings=settings,
    )
    server.should_exit = True
    thread.join(timeout=15)
