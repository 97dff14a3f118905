"""Run the real server on a free local port in a background thread (tests and benchmarks)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import uvicorn

from voxdialog.app import create_app
from voxdialog.observability.access_log import AccessLog
from voxdialog.settings import Settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class BackgroundServer:
    """``voxdialog serve`` in-process: start, wait until ready, stop.

    Args:
        settings: Must name the port (``free_port()``) and a data dir of its own.
        ready_timeout_s: How long model loading may take.
    """

    def __init__(self, settings: Settings, *, ready_timeout_s: float = 120.0) -> None:
        self.settings = settings
        self.base_url = f"http://127.0.0.1:{settings.port}"
        self.ws_url = f"ws://127.0.0.1:{settings.port}"
        config = uvicorn.Config(
            AccessLog(create_app(settings)),  # as `voxdialog serve` runs it
            host="127.0.0.1",
            port=settings.port,
            log_config=None,
            access_log=False,
            ws_max_size=settings.limits.ws_frame_limit_bytes,
            ws_per_message_deflate=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), daemon=True
        )
        self._ready_timeout_s = ready_timeout_s

    def start(self) -> None:
        """Start and block until ``/readyz`` answers 200."""
        self._thread.start()
        deadline = time.monotonic() + self._ready_timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not self._thread.is_alive():
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not become ready")

    @property
    def api_key(self) -> str:
        """The local API key created on first start."""
        return (self.settings.data_dir / "local-api-key").read_text().strip()

    def stop(self) -> None:
        """Ask the server to exit and wait for it."""
        self._server.should_exit = True
        self._thread.join(timeout=15)
