"""SIGTERM drains (reliability.md R13): ``voxdialog serve`` as a real process.

While draining, new HTTP requests get 503 with Retry-After and new Realtime handshakes a
refusal with 1013; the reply in progress finishes (``response.done`` completed, so it was
stored); then the live socket gets ``server_shutting_down`` and a 1001 close.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from voxdialog.testing.server import free_port

pytestmark = [pytest.mark.models, pytest.mark.slow]


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base_url: str
    ws_url: str
    api_key: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = {**os.environ, "VOXDIALOG_SHUTDOWN_DRAIN_S": "10"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voxdialog",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "the server exited while starting"
            time.sleep(0.2)
        key = (tmp_path / "local-api-key").read_text().strip()
        yield Served(process, base_url, f"ws://127.0.0.1:{port}", key)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def connect(served: Served) -> Any:
    return websockets.connect(
        f"{served.ws_url}/v1/realtime?model=local-voice",
        additional_headers={"Authorization": f"Bearer {served.api_key}"},
    )


async def events_until_closed(ws: Any) -> tuple[list[dict[str, Any]], int | None]:
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(40):
            while True:
                events.append(json.loads(await ws.recv()))
    except websockets.ConnectionClosed:
        pass
    rcvd = ws.protocol.close_rcvd
    return events, rcvd.code if rcvd is not None else None


async def test_sigterm_lets_the_reply_finish_refuses_newcomers_and_closes_with_1001(
    served: Served,
) -> None:
    async with connect(served) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "What can you do?"}],
        }
        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        await ws.send(json.dumps({"type": "response.create"}))
        async with asyncio.timeout(60):
            while json.loads(await ws.recv())["type"] != "response.output_audio.delta":
                pass
        served.process.send_signal(signal.SIGTERM)  # mid-reply

        async with httpx.AsyncClient(base_url=served.base_url, timeout=5) as http:
            async with asyncio.timeout(10):
                while (response := await http.get("/healthz")).status_code != 503:
                    await asyncio.sleep(0.05)
        assert response.headers["Retry-After"]
        async with connect(served) as late:
            refused, late_code = await events_until_closed(late)

        events, code = await events_until_closed(ws)
    kinds = [e["type"] for e in events]
    done = next(e for e in events if e["type"] == "response.done")
    assert done["response"]["status"] == "completed"
    assert kinds[-1] == "error"
    assert events[-1]["error"]["code"] == "server_shutting_down"
    assert code == 1001
    assert [e["error"]["code"] for e in refused] == ["server_shutting_down"]
    assert late_code == 1013
    served.process.wait(timeout=30)
