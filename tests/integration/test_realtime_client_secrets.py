"""Ephemeral keys at ``POST /v1/realtime/client_secrets``, minted and used as OpenAI's clients do.

A browser app's server mints one with the official SDK and hands its ``value`` to the page,
which opens the Realtime socket with it as the ``openai-insecure-api-key.`` subprotocol.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
import websockets
from openai import AsyncOpenAI, AuthenticationError

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.models


async def mint(live_server: LiveServer) -> str:
    async with AsyncOpenAI(
        base_url=f"{live_server.base_url}/v1", api_key=live_server.api_key
    ) as client:
        secret = await client.realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 600},
            session={"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."},
        )
    assert secret.expires_at > time.time()
    assert secret.expires_at <= time.time() + 61  # the server's ticket lifetime
    assert secret.session.type == "realtime"
    return secret.value


async def test_a_minted_key_opens_one_realtime_socket(live_server: LiveServer) -> None:
    key = await mint(live_server)
    url = f"{live_server.ws_url}/v1/realtime?model=gpt-realtime"
    protocols = ["realtime", f"openai-insecure-api-key.{key}"]
    async with websockets.connect(url, subprotocols=protocols) as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["type"] == "session.created"
    # Single use: the same key opens nothing more.
    async with websockets.connect(url, subprotocols=protocols) as again:  # type: ignore[arg-type]
        refused = json.loads(await again.recv())
    assert refused["type"] == "error"


async def test_minting_needs_a_credential(live_server: LiveServer) -> None:
    async with AsyncOpenAI(
        base_url=f"{live_server.base_url}/v1", api_key="sk-not-a-key", max_retries=0
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.realtime.client_secrets.create()
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        assert (await http.post("/v1/realtime/client_secrets", json={})).status_code == 401
