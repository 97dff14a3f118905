"""``voxdialog serve --workers 2`` as a real process: two workers behave as one server.

The kernel spreads connections over the workers (``SO_REUSEPORT``), so which worker a socket
lands on is chance; the admin's live view names each session's worker, which lets the test
wait until sessions are spread and check what crosses between workers: the server-wide and
per-user caps, the live view itself, and a takeover of a conversation held by the other worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from voxdialog.testing.server import free_port

pytestmark = [pytest.mark.models, pytest.mark.slow]

MAX_SESSIONS = 6
PER_USER = 4


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base_url: str
    ws_url: str
    api_key: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("workers")
    port = free_port()
    env = {
        **os.environ,
        "VOXDIALOG_LIMITS__MAX_SESSIONS": str(MAX_SESSIONS),
        "VOXDIALOG_RATE_LIMITS__WS_PER_USER": str(PER_USER),
        "VOXDIALOG_SHUTDOWN_DRAIN_S": "2",
    }
    command = [sys.executable, "-m", "voxdialog", "serve", "--workers", "2"]
    command += ["--port", str(port), "--data-dir", str(data)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_both_workers_answer(process, base_url)
        key = (data / "local-api-key").read_text().strip()
        yield Served(process, base_url, f"ws://127.0.0.1:{port}", key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_both_workers_answer(process: subprocess.Popen[bytes], base_url: str) -> None:
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"workers that answered: {seen}"
        assert process.poll() is None, "the server exited while starting"
        with contextlib.suppress(httpx.HTTPError):
            # A new connection each time: the kernel picks a worker per connection.
            reply = httpx.get(f"{base_url}/healthz", timeout=2)
            if reply.status_code == 200:
                seen.add(int(reply.json()["worker"]))
        time.sleep(0.1)


@contextlib.asynccontextmanager
async def realtime(
    served: Served, *, key: str | None = None, conversation: str | None = None
) -> AsyncIterator[Any]:
    query = "model=local-voice" + (f"&conversation={conversation}" if conversation else "")
    headers = {"Authorization": f"Bearer {key or served.api_key}"}
    async with websockets.connect(
        f"{served.ws_url}/v1/realtime?{query}", additional_headers=headers, open_timeout=30
    ) as ws:
        yield ws


async def first_event(ws: Any) -> dict[str, Any]:
    return dict(json.loads(await ws.recv()))


async def live_view(served: Served) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as http:
        reply = await http.get(
            "/api/admin/sessions/live", headers={"Authorization": f"Bearer {served.api_key}"}
        )
    assert reply.status_code == 200
    return list(reply.json())


async def metrics(served: Served) -> str:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as http:
        reply = await http.get("/metrics", headers={"Authorization": f"Bearer {served.api_key}"})
    assert reply.status_code == 200
    return reply.text


async def second_user_token(served: Served) -> str:
    admin = {"Authorization": f"Bearer {served.api_key}"}
    account = {"email": "second@example.com", "password": "an old blue boat sails at dawn"}
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
        created = await http.post("/api/admin/users", json=account, headers=admin)
        assert created.status_code == 201, created.text
        signed_in = await http.post("/api/auth/login", json=account)
        assert signed_in.status_code == 200, signed_in.text
    return str(signed_in.json()["access_token"])


async def test_caps_live_view_and_takeover_span_the_workers(served: Served) -> None:
    async with contextlib.AsyncExitStack() as stack:
        # Open sessions one by one until the view shows both workers holding some.
        sockets: dict[str, Any] = {}
        while len(sockets) < PER_USER:
            ws = await stack.enter_async_context(realtime(served))
            created = await first_event(ws)
            assert created["type"] == "session.created", created
            sockets[created["session"]["id"]] = ws
        view = await live_view(served)
        workers = {entry["session_id"]: entry["worker"] for entry in view}
        assert set(workers) == set(sockets)
        assert set(workers.values()) <= {1, 2}

        # Per user, counted over both workers: the fifth socket of this user is refused.
        async with realtime(served) as extra:
            refused = await first_event(extra)
        assert refused["type"] == "error"
        assert refused["error"]["code"] == "session_limit_reached"
        assert "too many open sessions" in refused["error"]["message"]

        # Server-wide: another user fills the server to its cap, then is refused.
        token = await second_user_token(served)
        for _ in range(MAX_SESSIONS - PER_USER):
            ws = await stack.enter_async_context(realtime(served, key=token))
            assert (await first_event(ws))["type"] == "session.created"
        async with realtime(served, key=token) as over:
            refused = await first_event(over)
        assert refused["error"]["code"] == "session_limit_reached"
        assert "Too many concurrent sessions" in refused["error"]["message"]

        # Every worker's view shows every worker's sessions (each request may land on either).
        for _ in range(6):
            assert len(await live_view(served)) == MAX_SESSIONS
            assert f"voxdialog_active_sessions {MAX_SESSIONS}.0" in await metrics(served)

        # A reconnect takes its conversation over from whichever worker holds it; repeated
        # until one takeover crossed from one worker to the other.
        crossed = False
        for attempt in range(12):
            session_id = list(sockets)[attempt % PER_USER]
            before = {e["session_id"]: e["worker"] for e in await live_view(served)}[session_id]
            old = sockets[session_id]
            new = await stack.enter_async_context(realtime(served, conversation=session_id))
            created = await first_event(new)
            assert created["type"] == "session.created", created
            assert created["session"]["id"] == session_id
            ended = await first_event(old)
            assert ended["error"]["code"] == "session_taken_over"
            sockets[session_id] = new
            after = {e["session_id"]: e["worker"] for e in await live_view(served)}[session_id]
            if after != before:
                crossed = True
                break
        assert crossed, "no takeover crossed workers in 12 tries"


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "voxdialog", "serve", "--workers", "2"]
    command += ["--port", str(port), "--data-dir", str(tmp_path)]
    env = {**os.environ, "VOXDIALOG_SHUTDOWN_DRAIN_S": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_until_both_workers_answer(process, f"http://127.0.0.1:{port}")
        process.terminate()
        assert process.wait(timeout=60) == 0
        # Nothing is left listening: the port binds again at once.
        with contextlib.closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", port))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
