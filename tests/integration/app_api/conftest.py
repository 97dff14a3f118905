"""One live server per database backend for the app API tests, and helpers to drive it.

``live_server`` here replaces the per-module one of ``tests/integration/conftest.py``: it is
shared by the whole package and runs once on SQLite and once on PostgreSQL, because the app
queries (paging, counts, case-folded names, cascades) must behave alike on both.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from openai import AsyncOpenAI

from tests.integration.conftest import LiveServer, serving
from tests.integration.db.conftest import require_postgres_or_skip
from tests.integration.realtime_client import collect_until
from voxdialog.settings import RateLimitSettings, Settings
from voxdialog.testing.databases import BACKENDS, create_postgres_database, drop_postgres_database
from voxdialog.testing.server import free_port

T = TypeVar("T")


@pytest.fixture(scope="package", params=BACKENDS)
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The server under test, on a database of its own (SQLite file or new PostgreSQL db)."""
    database_url: str | None = None
    if request.param == "postgresql":
        require_postgres_or_skip()
        database_url = asyncio.run(create_postgres_database("vxapp"))
    data_dir = tmp_path_factory.mktemp(f"app-api-{request.param}")
    settings = Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=free_port(),
        database_url=database_url,
        # Every client comes from 127.0.0.1 and the isolation tests make hundreds of requests
        # per user: lift the limits (they are tested in tests/integration/ratelimit).
        rate_limits=RateLimitSettings(
            register_per_ip=10_000,
            login_per_ip=10_000,
            per_ip=100_000,
            per_user=100_000,
            per_tenant=100_000,
        ),
    )
    try:
        with serving(settings) as server:
            yield server
    finally:
        if database_url is not None:
            asyncio.run(drop_postgres_database(database_url))


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the server under test."""
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    """The authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def register(http: httpx.AsyncClient) -> str:
    """Sign up the admin of a new tenant; returns its access token."""
    body = {
        "email": f"app-{uuid.uuid4().hex[:12]}@example.com",
        "password": f"correct horse {uuid.uuid4()}",
        "tenant_name": "Household",
    }
    response = await http.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["access_token"]
    return token


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an error answer."""
    error: dict[str, Any] = response.json()["error"]
    return error


async def created(http: httpx.AsyncClient, token: str, path: str, body: dict[str, Any]) -> Any:
    """POST ``body``, expect 201, return the created object."""
    response = await http.post(path, json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()


async def read_all(http: httpx.AsyncClient, token: str, path: str, limit: int = 7) -> list[Any]:
    """Every item of a paged list, following ``has_more`` with ``offset``."""
    items: list[Any] = []
    while True:
        response = await http.get(
            path, params={"limit": limit, "offset": len(items)}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= limit
        items += page["data"]
        if not page["has_more"]:
            return items
        assert len(page["data"]) == limit


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 15.0) -> T:
    """Poll ``check`` until it returns a value (the server records turns just after them)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value is not None:
                return value
            await asyncio.sleep(0.05)


def realtime(server: LiveServer, token: str) -> AsyncOpenAI:
    """The official SDK, signed in as the holder of ``token``."""
    return AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key=token)


async def say(conn: Any, text: str) -> list[Any]:
    """One typed user turn; the events up to the end of the response."""
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create()
    return await collect_until(conn, {"response.done"}, timeout=60)


async def typed_conversation(server: LiveServer, token: str, text: str) -> str:
    """A whole voice session with one typed turn; returns the conversation (session) id."""
    async with realtime(server, token).realtime.connect(model="local-voice") as conn:
        first = await conn.recv()
        assert first.type == "session.created"
        events = await say(conn, text)
    assert events[-1].response.status == "completed"
    session_id: str = first.session.id
    return session_id


async def conversation_with_reply(
    http: httpx.AsyncClient, token: str, conversation_id: str
) -> dict[str, Any]:
    """The conversation once its assistant message is stored (it is written just after)."""

    async def check() -> dict[str, Any] | None:
        response = await http.get(f"/api/conversations/{conversation_id}", headers=bearer(token))
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        roles = [message["role"] for message in body["messages"]]
        return body if "assistant" in roles else None

    return await eventually(check)
