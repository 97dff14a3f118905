"""``voxdialog serve``: one process, or a supervisor with N worker processes on one port.

One Python process runs one event loop on one core. With ``--workers N`` the supervisor
prepares the data once (migrations, the local admin and key, the JWT key, sessions a crash
left open), starts the session registry (``coordinator.py``) and N workers; each worker binds
the port itself with ``SO_REUSEPORT``, so the kernel spreads connections across them, loads the
models and serves. SIGTERM (or SIGINT) is passed to every worker, each drains as a single
server does, and the supervisor exits when they have. A worker that dies is started again.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from voxdialog.settings import Settings

log = logging.getLogger(__name__)

#: A worker that dies sooner than this after its start is not restarted in a tight loop.
_RESTART_BACKOFF_S = 2.0
#: How long the supervisor waits for draining workers beyond their drain window.
_EXIT_GRACE_S = 15.0


def worker_count(settings: Settings) -> int:
    """``settings.workers``, or the CPU count when not set."""
    return settings.workers or os.cpu_count() or 1


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn settings every serving process uses."""
    return {
        "ws_max_size": settings.limits.ws_frame_limit_bytes,
        "ws_per_message_deflate": False,
        "log_config": None,
        # Our access log (secret query values replaced) instead of uvicorn's raw one.
        "access_log": False,
        # The client address and scheme come from X-Forwarded-* only when sent by these.
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or None,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_keyfile": settings.ssl_keyfile,
    }


def serve(settings: Settings) -> int:
    """Serve until stopped; returns the exit code."""
    count = worker_count(settings)
    scheme = "https" if settings.ssl_certfile else "http"
    sys.stderr.write(
        f"VoxDialog on {scheme}://{settings.host}:{settings.port}/ (data in {settings.data_dir}"
        f"{f', {count} workers' if count > 1 else ''})\n"
    )
    if count == 1:
        _serve_here(settings, directory_path=None)
        return 0
    return _Supervisor(settings, count).run()


def _serve_here(settings: Settings, *, directory_path: Path | None) -> None:
    """Run the app in this process (alone, or as one worker of a supervisor)."""
    import uvicorn

    from voxdialog.app import create_app
    from voxdialog.observability.access_log import AccessLog
    from voxdialog.runtime import Runtime

    runtime = Runtime(settings, directory_path=directory_path)
    app = AccessLog(create_app(settings, runtime=runtime))
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, **uvicorn_options(settings)
    )
    server = uvicorn.Server(config)
    if directory_path is None:
        server.run()
        return
    server.run(sockets=[_reuse_port_socket(settings.host, settings.port)])


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to the port that the other workers bind too; the kernel spreads the
    connections over the listening ones. It listens only once uvicorn has started the app
    (the models loaded), so no connection waits in the queue of a worker still loading."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_worker(settings: Settings, index: int, directory_path: str) -> None:
    """A worker process's entry point (spawned by the supervisor)."""
    from voxdialog.observability.logging import configure_logging

    configure_logging(settings.log_level, json_lines=settings.log_json)
    from voxdialog.runtime import WORKER_INDEX_ENV

    os.environ[WORKER_INDEX_ENV] = str(index + 1)  # 0 means a server alone
    _serve_here(settings, directory_path=Path(directory_path))


class _Supervisor:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, tuple[BaseProcess, float]] = {}
        self._stopping = False
        self._signal: int = signal.SIGTERM

    def run(self) -> int:
        from voxdialog.workers.coordinator import CoordinatorThread

        asyncio.run(_prepare(self.settings))
        folder = Path(tempfile.mkdtemp(prefix="voxdialog-"))  # short: a socket path has 108 bytes
        registry = CoordinatorThread(folder / "registry.sock")
        registry.start()
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for index in range(self.count):
                self._start(index, registry.path)
            self._watch(registry.path)
            return self._wait_for_exit()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            registry.stop()
            folder.rmdir()

    def _start(self, index: int, path: Path) -> None:
        process = self._context.Process(
            target=run_worker,
            args=(self.settings, index, str(path)),
            name=f"voxdialog-worker-{index}",
        )
        process.start()
        self._workers[index] = (process, time.monotonic())

    def _watch(self, path: Path) -> None:
        while not self._stopping:
            time.sleep(0.2)
            for index, (process, started) in list(self._workers.items()):
                if process.is_alive() or self._stopping:
                    continue
                log.error("worker %d exited with %s; starting it again", index, process.exitcode)
                if time.monotonic() - started < _RESTART_BACKOFF_S:
                    time.sleep(_RESTART_BACKOFF_S)
                self._start(index, path)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self._stopping:
            for process, _ in self._workers.values():  # a second signal: stop now
                if process.pid is not None and process.is_alive():
                    os.kill(process.pid, signal.SIGKILL)
            return
        self._stopping = True
        self._signal = sig
        for process, _ in self._workers.values():
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, sig)

    def _wait_for_exit(self) -> int:
        deadline = time.monotonic() + self.settings.shutdown_drain_s + _EXIT_GRACE_S
        for process, _ in self._workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
        for process, _ in self._workers.values():
            if process.is_alive():
                process.kill()
                process.join(5)
        return 0


async def _prepare(settings: Settings) -> None:
    """What must happen once before the workers start (each would race the others)."""
    from voxdialog.runtime import Runtime

    runtime = Runtime(settings)
    try:
        await runtime.start(load_models=False)
    finally:
        await runtime.close()
