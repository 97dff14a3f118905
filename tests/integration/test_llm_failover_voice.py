"""Voice turns answered by declared LLM providers: failover, task tools, a chat model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.integration.realtime_client import (
    collect_until,
    reply_transcript,
    silence24,
    stream_pcm24,
)
from voxdialog.brain.base import Scope
from voxdialog.db.engine import Database
from voxdialog.db.repos.accounts import ensure_local_admin
from voxdialog.db.repos.tasks import SqlTaskStore
from voxdialog.settings import AgentSettings, ChainSettings, ProviderSettings, Settings
from voxdialog.testing.fake_openai import ChatReply, FakeOpenAIServer, FakeToolCall, Fault
from voxdialog.testing.server import BackgroundServer, free_port

pytestmark = [pytest.mark.models, pytest.mark.slow]

BACKUP_WORDS = "Backup here. The primary model is resting."


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAIServer, FakeOpenAIServer]]:
    with FakeOpenAIServer() as primary, FakeOpenAIServer() as backup:
        yield primary, backup


@pytest.fixture(scope="module")
def server(
    fakes: tuple[FakeOpenAIServer, FakeOpenAIServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackgroundServer]:
    primary, backup = fakes
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("llm-server"),
        port=free_port(),
        providers={
            "primary": ProviderSettings(
                kind="openai_compatible",
                base_url=primary.url,
                model="big",
                api_key_env="NO_SUCH_KEY_VAR",
            ),
            "backup": ProviderSettings(kind="ollama", base_url=backup.url, model="small"),
        },
        agent=AgentSettings(llm=["primary", "backup"]),
        # Short attempt timeout so the hang case stays quick; a wide breaker so every case
        # really calls the primary first.
        chain=ChainSettings(attempt_timeout_s=1.0, breaker_failures=50),
    )
    background = BackgroundServer(settings)
    background.start()
    yield background
    background.stop()


@pytest.fixture(autouse=True)
def clean(fakes: tuple[FakeOpenAIServer, FakeOpenAIServer]) -> None:
    for fake in fakes:
        fake.reset()


async def spoken(server: BackgroundServer, text: str) -> bytes:
    async with AsyncOpenAI(api_key=server.api_key, base_url=f"{server.base_url}/v1") as api:
        audio = await api.audio.speech.create(
            model="tts-1", voice="alloy", input=text, response_format="pcm"
        )
        return audio.content


async def voice_turn(server: BackgroundServer, text: str) -> list[Any]:
    pcm = await spoken(server, text)
    api = AsyncOpenAI(api_key=server.api_key, base_url=f"{server.base_url}/v1")
    async with api.realtime.connect(model="local-voice") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            }
        )
        sender = asyncio.create_task(
            stream_pcm24(conn, silence24(300) + pcm + silence24(1500), speed=3.0)
        )
        events = await collect_until(conn, {"response.done"}, timeout=60)
        await sender
    return events


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="status", status=500, times=None),
        Fault(kind="hang", times=None),
        Fault(kind="disconnect_mid_stream", after_chunks=0, times=None),
    ],
    ids=["http-500", "hang", "drop-before-first-token"],
)
async def test_a_voice_turn_completes_with_the_backup_while_the_primary_fails(
    server: BackgroundServer, fakes: tuple[FakeOpenAIServer, FakeOpenAIServer], fault: Fault
) -> None:
    primary, backup = fakes
    primary.faults.append(fault)
    backup.replies.append(ChatReply(text=BACKUP_WORDS))
    events = await voice_turn(server, "Tell me something nice.")
    assert events[-1].response.status == "completed"
    assert reply_transcript(events) == BACKUP_WORDS
    assert primary.requests_to("/chat/completions")
    assert backup.requests_to("/chat/completions")


async def test_asking_by_voice_to_add_milk_calls_the_task_tool(
    server: BackgroundServer, fakes: tuple[FakeOpenAIServer, FakeOpenAIServer]
) -> None:
    primary, _ = fakes
    primary.replies.extend(
        [
            ChatReply(tool_calls=(FakeToolCall("create_task", '{"title": "buy milk"}'),)),
            ChatReply(text="Okay, buy milk is on your list."),
        ]
    )
    events = await voice_turn(server, "Add buy milk to my list.")
    assert "milk" in reply_transcript(events).lower()
    first = primary.requests_to("/chat/completions")[0].json
    assert any(t["function"]["name"] == "create_task" for t in first["tools"])
    assert "milk" in first["messages"][-1]["content"].lower()
    db = Database(server.settings.effective_database_url)
    try:
        scope: Scope = (await ensure_local_admin(db)).scope
        titles = [t.title for t in await SqlTaskStore(db).list_tasks(scope)]
    finally:
        await db.close()
    assert "buy milk" in [t.lower() for t in titles]


async def test_the_sdk_streams_the_llm_agent_through_chat_completions(
    server: BackgroundServer, fakes: tuple[FakeOpenAIServer, FakeOpenAIServer]
) -> None:
    primary, _ = fakes
    primary.replies.append(ChatReply(text="Streaming from the primary model."))
    async with AsyncOpenAI(api_key=server.api_key, base_url=f"{server.base_url}/v1") as api:
        stream = await api.chat.completions.create(
            model="local-voice",
            stream=True,
            messages=[{"role": "user", "content": "Say something."}],
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Streaming from the primary model."
