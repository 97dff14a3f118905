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
from voxdialog.db.engine import Database
from voxdialog.db.repos.accounts import ensure_local_admin
from voxdialog.db.repos.tasks import SqlTaskStore
from voxdialog.security.principal import Scope
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
        Fault(status=500, times=None),
        Fault(hang=True, times=None),
        Fault(drop_after=0, times=None),
    ],
    ids=["http-500", "hang", "drop-before-first-token"],
)
async def test_a_voice_turn_completes_with_the_backup_while_the_primary_fails(
    server: BackgroundServer, fakes: tuple[FakeOpenAIServer, FakeOpenAIServer], fault: Fault
) -> None:
    primary, backup = fakes
    primary.inject(fault)
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


async def test_client_tools_are_called_over_realtime_and_their_output_answered(
    server: BackgroundServer, fakes: tuple[FakeOpenAIServer, FakeOpenAIServer]
) -> None:
    primary, _ = fakes
    primary.replies.extend(
        [
            ChatReply(tool_calls=(FakeToolCall("get_weather", '{"city": "Oslo"}', id="call_w1"),)),
            ChatReply(text="It is twenty one degrees in Oslo."),
        ]
    )
    weather = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    api = AsyncOpenAI(api_key=server.api_key, base_url=f"{server.base_url}/v1")
    async with api.realtime.connect(model="local-voice") as conn:
        await conn.session.update(session={"type": "realtime", "tools": [weather]})
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What's the weather in Oslo?"}],
            }
        )
        await conn.response.create()
        first = await collect_until(conn, {"response.done"}, timeout=30)
        done_args = next(e for e in first if e.type == "response.function_call_arguments.done")
        assert done_args.name == "get_weather"
        assert done_args.call_id == "call_w1"
        assert '"Oslo"' in done_args.arguments
        assert [o.type for o in first[-1].response.output] == ["function_call"]
        assert not any(e.type == "response.output_audio.delta" for e in first)
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call_w1", "output": '{"temp_c": 21}'}
        )
        await conn.response.create()
        second = await collect_until(conn, {"response.done"}, timeout=30)
    assert reply_transcript(second) == "It is twenty one degrees in Oslo."
    follow_up = primary.requests_to("/chat/completions")[-1].json
    tool_messages = [m for m in follow_up["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["tool_call_id"] == "call_w1"
    assert any(m.get("tool_calls") for m in follow_up["messages"] if m["role"] == "assistant")
    assert any(t["function"]["name"] == "get_weather" for t in follow_up["tools"])


async def test_when_every_llm_fails_the_person_still_gets_an_answer_and_the_client_an_error(
    server: BackgroundServer, fakes: tuple[FakeOpenAIServer, FakeOpenAIServer]
) -> None:
    primary, backup = fakes
    primary.inject(Fault(status=503, times=None))
    backup.inject(Fault(status=500, times=None))
    events = await voice_turn(server, "Add a task to call the plumber.")
    errors = [e for e in events if e.type == "error"]
    assert [e.error.code for e in errors] == ["llm_unavailable"]
    assert events[-1].response.status == "completed"
    # The built-in assistant answered instead: the task is added, and said so aloud.
    assert "plumber" in reply_transcript(events).lower()


async def test_failovers_are_visible_in_metrics(
    server: BackgroundServer, fakes: tuple[FakeOpenAIServer, FakeOpenAIServer]
) -> None:
    import httpx

    primary, backup = fakes
    primary.inject(Fault(status=500, times=None))
    backup.replies.append(ChatReply(text=BACKUP_WORDS))
    await voice_turn(server, "Tell me something nice.")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        auth = {"Authorization": f"Bearer {server.api_key}"}  # the operator's key
        text = (await http.get("/metrics", headers=auth)).text
    failovers = [
        line
        for line in text.splitlines()
        if line.startswith("voxdialog_provider_failovers_total{")
        and 'provider="primary"' in line
        and 'next_provider="backup"' in line
    ]
    assert failovers
    assert float(failovers[0].rsplit(" ", 1)[1]) >= 1
    assert "voxdialog_end_of_speech_to_first_audio_seconds_count" in text
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        ready = (await http.get("/readyz")).json()
    (chain,) = ready["checks"]["providers"].values()
    assert chain["stage"] == "llm"
    assert set(chain["breakers"]) == {"primary", "backup"}
    assert ready["checks"]["llm"] in ready["checks"]["providers"]
