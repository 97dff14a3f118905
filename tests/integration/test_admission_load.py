"""A process whose event loop already runs late refuses new sessions cleanly (1013), before
the sessions it has degrade; with room it admits them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import websockets

from tests.integration.conftest import LiveServer, serving
from voxdialog.settings import LimitSettings, Settings
from voxdialog.testing.server import free_port


@pytest.fixture(scope="module")
def touchy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Any measurable lag counts as saturation here: the loop always oversleeps a little.
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("touchy"),
        host="127.0.0.1",
        port=free_port(),
        limits=LimitSettings(admission_max_loop_lag_ms=0.0001),
    )
    with serving(settings) as server:
        yield server


async def _first_event(server: LiveServer) -> tuple[dict[str, object], int | None]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    async with websockets.connect(
        f"{server.ws_url}/v1/realtime?model=local-voice", additional_headers=headers
    ) as ws:
        first: dict[str, object] = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if first["type"] == "session.created":
            return first, None
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        return first, ws.close_code


async def test_a_saturated_process_refuses_new_sessions_with_1013(
    touchy_server: LiveServer,
) -> None:
    async with asyncio.timeout(30):
        while True:  # the first lag sample arrives within half a second of the start
            first, close_code = await _first_event(touchy_server)
            if first["type"] == "error":
                break
            await asyncio.sleep(0.2)
    error = first["error"]
    assert isinstance(error, dict)
    assert (error["code"], error["type"], close_code) == ("server_busy", "server_error", 1013)


async def test_a_process_with_room_admits(live_server: LiveServer) -> None:
    first, _ = await _first_event(live_server)
    assert first["type"] == "session.created"
