"""The whole server on PostgreSQL and Redis, chosen by settings alone (no code changes).

Needs the PostgreSQL on 127.0.0.1:5432 and the Redis on 127.0.0.1:6379: skipped without
them on a laptop, failed in CI.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from redis.asyncio import Redis

from tests.integration.realtime_client import collect_until
from voxdialog.app import create_app
from voxdialog.settings import RateLimitSettings, Settings
from voxdialog.testing.databases import (
    create_postgres_database,
    drop_postgres_database,
    postgres_available,
)
from voxdialog.testing.server import BackgroundServer, free_port

pytestmark = pytest.mark.models

REDIS_URL = os.environ.get("VOXDIALOG_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


async def _redis_available() -> bool:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        return bool(await client.ping())
    except OSError:
        return False
    except Exception:
        return False
    finally:
        await client.aclose()


def _require(available: bool, what: str) -> None:
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not reachable; CI must run these tests")
    pytest.skip(f"{what} is not reachable")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    _require(asyncio.run(postgres_available()), "PostgreSQL at 127.0.0.1:5432")
    _require(asyncio.run(_redis_available()), "Redis at 127.0.0.1:6379")
    database_url = asyncio.run(create_postgres_database("vxtest_server"))
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("pg-server"),
        port=free_port(),
        database_url=database_url,
        redis_url=REDIS_URL,
        rate_limits=RateLimitSettings(login_per_account=3, register_per_ip=1000),
    )
    background = BackgroundServer(settings)
    background.start()
    yield background
    background.stop()
    asyncio.run(drop_postgres_database(database_url))


async def _register(http: httpx.AsyncClient) -> dict[str, Any]:
    body = {"email": f"pg-{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse pg 1"}
    response = await http.post("/api/auth/register", json={**body, "tenant_name": "PG"})
    assert response.status_code == 201, response.text
    return {**response.json(), **body}


async def test_a_voice_task_lands_in_postgresql_and_shows_in_the_api(
    server: BackgroundServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        token = user["access_token"]
        client = AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key=token)
        async with client.realtime.connect(model="local-voice") as conn:
            await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            await conn.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Add a task to feed the cat"}],
                }
            )
            await conn.response.create()
            events = await collect_until(conn, {"response.done"}, timeout=60)
        session_id = next(e for e in events if e.type == "session.created").session.id
        tasks = await http.get("/api/tasks", headers={"Authorization": f"Bearer {token}"})
        conversation = await http.get(
            f"/api/conversations/{session_id}", headers={"Authorization": f"Bearer {token}"}
        )
    assert tasks.status_code == 200, tasks.text
    assert any("feed the cat" in t["title"].lower() for t in tasks.json()["data"]), tasks.text
    assert conversation.status_code == 200, conversation.text
    roles = [m["role"] for m in conversation.json()["messages"]]
    assert roles[:2] == ["user", "assistant"]


async def test_login_throttling_counts_in_redis(server: BackgroundServer) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            user = await _register(http)
            statuses = [
                (
                    await http.post(
                        "/api/auth/login", json={"email": user["email"], "password": "nope nope 1"}
                    )
                ).status_code
                for _ in range(5)
            ]
        keys = [k.decode() async for k in redis.scan_iter("voxdialog:rl:login:*")]
    finally:
        await redis.aclose()
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    assert keys  # the counts live in Redis, so every server process shares them
    assert not any(user["email"] in k for k in keys)  # emails are hashed in key names


async def test_readiness_checks_postgresql_and_redis(server: BackgroundServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["cache"] == "redis"


async def test_an_unreachable_redis_makes_the_server_unready(tmp_path: Path) -> None:
    # Nothing listens on port 1: the shared cache is down while the database is fine.
    settings = Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    app = create_app(settings, load_models=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert ready.json()["checks"]["cache"].startswith("error")
    assert ready.json()["checks"]["database"] == "ok"
