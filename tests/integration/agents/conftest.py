"""One server for the agent tests: two declared providers on a fake OpenAI, built-in default.

The server's own agent has no language model (the built-in assistant answers); the fake
serves the ``persona`` LLM and the ``cloud-voice`` TTS that agents may name.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from tests.integration.realtime_client import collect_until
from voxdialog.settings import ProviderSettings, RateLimitSettings, Settings
from voxdialog.testing.fake_openai import FakeOpenAIServer
from voxdialog.testing.server import BackgroundServer, free_port

PERSONA_LLM = "persona"
CLOUD_TTS = "cloud-voice"


@pytest.fixture(scope="package")
def fake() -> Iterator[FakeOpenAIServer]:
    """The remote providers' stand-in."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="package")
def server(
    fake: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackgroundServer]:
    """The server under test (models load once for the whole package)."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("agents-server"),
        port=free_port(),
        providers={
            PERSONA_LLM: ProviderSettings(
                kind="openai_compatible", base_url=fake.url, model="persona-model"
            ),
            CLOUD_TTS: ProviderSettings(
                kind="openai_compatible", stage="tts", base_url=fake.url, model="tts-1"
            ),
        },
        # Every client comes from 127.0.0.1: lift the per-IP sign-up and request limits.
        rate_limits=RateLimitSettings(register_per_ip=10_000, login_per_ip=10_000, per_ip=100_000),
    )
    background = BackgroundServer(settings)
    background.start()
    yield background
    background.stop()


@pytest.fixture(autouse=True)
def clean(fake: FakeOpenAIServer) -> None:
    """Each test starts with no scripted answers and no recorded requests."""
    fake.reset()


@pytest.fixture
async def http(server: BackgroundServer) -> AsyncIterator[httpx.AsyncClient]:
    """A REST client of the server."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


def realtime(server: BackgroundServer, token: str) -> AsyncOpenAI:
    """The official SDK, pointed at the server, signed in with ``token``."""
    return AsyncOpenAI(api_key=token, base_url=f"{server.base_url}/v1")


async def ask(conn: Any, text: str) -> list[Any]:
    """Send a user message as text and collect the response to it."""
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create()
    return await collect_until(conn, {"response.done"}, timeout=60)


def password() -> str:
    """A fresh password that passes the policy."""
    return f"correct horse {uuid.uuid4()}"


def email() -> str:
    """A fresh email address."""
    return f"agents-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    """The authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def register(http: httpx.AsyncClient) -> dict[str, Any]:
    """Sign up the admin of a new tenant; the answer has ``access_token`` and ``user``."""
    body = {"email": email(), "password": password(), "tenant_name": "Acme"}
    response = await http.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    signed: dict[str, Any] = response.json()
    return signed


async def new_agent(http: httpx.AsyncClient, token: str, **fields: Any) -> dict[str, Any]:
    """Create an agent (a unique name unless given) and return it."""
    body = {"name": f"agent {uuid.uuid4().hex[:8]}", **fields}
    response = await http.post("/api/agents", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent
