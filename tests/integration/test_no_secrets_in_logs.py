"""R15: a server used with known credentials in query strings, headers and bodies logs none.

Everything the process writes is captured (every log record, as text and as JSON lines, and
the process's stdout and stderr) and scanned for each credential: the first-start API key, a
password, access and refresh tokens, a WebSocket ticket.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.integration.conftest import LiveServer, serving
from voxdialog.observability.logging import make_log_handler
from voxdialog.settings import LimitSettings, RateLimitSettings, Settings
from voxdialog.testing.server import free_port

pytestmark = pytest.mark.models

PASSWORD = "canary-Pa55word-" + uuid.uuid4().hex[:12]


class _Captured:
    def __init__(self) -> None:
        self.text = io.StringIO()
        self.json = io.StringIO()

    def access_lines(self) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.json.getvalue().splitlines()]
        return [line for line in lines if line["logger"] == "voxdialog.access"]


@pytest.fixture
def captured() -> Iterator[_Captured]:
    """Every record at DEBUG and above, through both of the server's handler kinds."""
    logs = _Captured()
    handlers = [make_log_handler(logs.text), make_log_handler(logs.json, json_lines=True)]
    root = logging.getLogger()
    level = root.level
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield logs
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)


async def _first_event(url: str, **options: Any) -> dict[str, Any]:
    async with websockets.connect(url, **options) as ws:
        event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
        return event


async def _use_every_credential(server: LiveServer) -> list[str]:
    """Sign up, sign in, refresh, call the API and open sockets; the credentials used."""
    key = server.api_key
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        email = f"canary-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD}
        registered = (await http.post("/api/auth/register", json=body)).json()
        wrong = await http.post("/api/auth/login", json={"email": email, "password": key})
        assert wrong.status_code == 401
        signed_in = (await http.post("/api/auth/login", json=body)).json()
        access, refresh = signed_in["access_token"], signed_in["refresh_token"]
        await http.post("/api/auth/refresh", json={"refresh_token": refresh})
        # Credentials where they do not belong: in a query string and in a bad header.
        await http.get(f"/api/tasks?token={key}&api_key={key}&access_token={access}")
        await http.get("/api/tasks", headers={"Authorization": f"Bearer {key}x"})
        await http.get("/api/tasks", headers={"Authorization": f"Bearer {access}"})
        ticket = (
            await http.post("/api/auth/ws-ticket", headers={"Authorization": f"Bearer {access}"})
        ).json()["ticket"]
    ws = f"{server.ws_url}/v1/realtime"
    assert (await _first_event(f"{ws}?ticket={ticket}"))["type"] == "session.created"
    assert (await _first_event(f"{ws}?ticket={ticket}"))["type"] == "error"  # spent
    assert (await _first_event(f"{ws}?token={key}"))["type"] == "session.created"
    subprotocol = websockets.Subprotocol(f"openai-insecure-api-key.{key}")
    options = {"subprotocols": [websockets.Subprotocol("realtime"), subprotocol]}
    assert (await _first_event(ws, **options))["type"] == "session.created"
    return [key, PASSWORD, access, refresh, registered["refresh_token"], ticket]


async def test_no_credential_reaches_any_log_line_or_the_console(
    tmp_path_factory: pytest.TempPathFactory,
    captured: _Captured,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("canary"),
        host="127.0.0.1",
        port=free_port(),
        rate_limits=RateLimitSettings(register_per_ip=1000, login_per_ip=1000),
        # A busy CI box makes the in-process loop run late; admission is tested elsewhere.
        limits=LimitSettings(admission_max_loop_lag_ms=0),
    )
    with serving(settings) as server:
        secrets = await _use_every_credential(server)
    console = capfd.readouterr()
    written = "\n".join([captured.text.getvalue(), captured.json.getvalue(), *console])
    leaked = [n for n, secret in enumerate(secrets) if secret in written]
    assert leaked == []  # indexes into [key, password, access, refresh, refresh, ticket]
    # The first-start key is in its file, and the log says so (stderr is no terminal here).
    assert "local-api-key" in captured.text.getvalue()
    # One access line per request and socket, with the secret values replaced.
    paths = [line["path"] for line in captured.access_lines()]
    assert "/v1/realtime?ticket=[redacted]" in paths
    assert "/api/tasks?token=[redacted]&api_key=[redacted]&access_token=[redacted]" in paths
    statuses = {(line["method"], line["status"]) for line in captured.access_lines()}
    assert {("POST", 201), ("POST", 401), ("WS", 101)} <= statuses
