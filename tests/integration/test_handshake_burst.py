"""150 clients connecting at once: each is admitted or cleanly refused, never a server error.

On SQLite the handshakes once queued their key checks behind every write and 13 of 150
failed with HTTP 500 (pool timeouts, "database is locked").
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.integration.conftest import LiveServer, serving
from voxdialog.settings import LimitSettings, RateLimitSettings, Settings
from voxdialog.testing.server import free_port

CLIENTS = 150
CAP = 120


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("burst"),
        host="127.0.0.1",
        port=free_port(),
        limits=LimitSettings(max_sessions=CAP),
        rate_limits=RateLimitSettings(per_ip=100_000, ws_per_user=1_000),
    )
    with serving(settings) as server:
        yield server


async def _connect(server: LiveServer, admitted: list[int], release: asyncio.Event) -> str:
    """What the client saw first: its session, or the error (and close code) that refused it."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    async with websockets.connect(
        f"{server.ws_url}/v1/realtime?model=local-voice", additional_headers=headers
    ) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if first["type"] == "session.created":
            admitted.append(1)
            await release.wait()  # hold the session open until every client has its answer
            return "session.created"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        return f"{first['error']['code']}/{ws.close_code}"


async def test_a_burst_of_connections_is_admitted_or_cleanly_refused(
    capped_server: LiveServer,
) -> None:
    admitted: list[int] = []
    release = asyncio.Event()
    tasks = [
        asyncio.create_task(_connect(capped_server, admitted, release)) for _ in range(CLIENTS)
    ]
    async with asyncio.timeout(120):
        while len(admitted) + sum(t.done() for t in tasks) < CLIENTS:
            await asyncio.sleep(0.05)
        release.set()
        outcomes = await asyncio.gather(*tasks)
    assert outcomes.count("session.created") == CAP
    assert set(outcomes) == {"session.created", "session_limit_reached/1013"}
    async with httpx.AsyncClient(base_url=capped_server.base_url) as http:
        assert (await http.get("/readyz")).status_code == 200
