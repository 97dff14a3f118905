"""A real server on a free port, one per test module (models load once per module)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from voxdialog.settings import RateLimitSettings, Settings
from voxdialog.testing.server import BackgroundServer, free_port


@dataclass(frozen=True, slots=True)
class LiveServer:
    """Where the test server listens and how to reach it."""

    base_url: str
    ws_url: str
    api_key: str
    data_dir: Path
    settings: Settings


@contextmanager
def serving(settings: Settings) -> Iterator[LiveServer]:
    """Run the server for ``settings`` (a free port, a data dir of its own) in-process, on a
    background thread, until the block ends."""
    server = BackgroundServer(settings)
    server.start()
    try:
        yield LiveServer(
            base_url=server.base_url,
            ws_url=server.ws_url,
            api_key=server.api_key,
            data_dir=settings.data_dir,
            settings=settings,
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Start the server in-process on a background thread, with a data dir of its own."""
    data_dir = tmp_path_factory.mktemp("server-data")
    settings = Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=free_port(),
        # Every test client comes from 127.0.0.1: lift the per-IP sign-up and sign-in limits
        # (the limits themselves are tested in tests/integration/auth). The concurrency tests
        # open more sockets for one user than the per-user cap allows (tests/unit/test_live.py).
        rate_limits=RateLimitSettings(
            register_per_ip=10_000, login_per_ip=10_000, per_ip=100_000, ws_per_user=100
        ),
    )
    with serving(settings) as server:
        yield server
