"""A conversation resumed after a reconnect continues its context (the context service)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.integration.realtime_client import collect_until
from voxdialog.settings import AgentSettings, ProviderSettings, Settings
from voxdialog.testing.fake_openai import ChatReply, FakeOpenAIServer
from voxdialog.testing.server import BackgroundServer, free_port

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(
    llm: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackgroundServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("resume-server"),
        port=free_port(),
        providers={"llm": ProviderSettings(kind="ollama", base_url=llm.url, model="m")},
        agent=AgentSettings(llm=["llm"]),
    )
    background = BackgroundServer(settings)
    background.start()
    yield background
    background.stop()


def _client(server: BackgroundServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key)


async def _say(conn: Any, text: str) -> list[Any]:
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create()
    return await collect_until(conn, {"response.done"}, timeout=60)


def _sent_messages(llm: FakeOpenAIServer) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = llm.requests_to("/chat/completions")[-1].json["messages"]
    return messages


async def test_a_resumed_conversation_keeps_its_context(
    server: BackgroundServer, llm: FakeOpenAIServer
) -> None:
    llm.replies.extend(
        [ChatReply(text="Nice to meet you, Ziggy."), ChatReply(text="You are Ziggy.")]
    )
    async with _client(server).realtime.connect(model="local-voice") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        created = await collect_until(conn, {"session.updated"}, timeout=30)
        session_id = next(e for e in created if e.type == "session.created").session.id
        await _say(conn, "My name is Ziggy Stardust.")
    # The socket dropped; the client reconnects to the same conversation.
    async with _client(server).realtime.connect(
        model="local-voice", extra_query={"conversation": session_id}
    ) as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        resumed = await collect_until(conn, {"session.updated"}, timeout=30)
        await _say(conn, "What is my name?")
    texts = [m.get("content") for m in _sent_messages(llm)]
    assert next(e for e in resumed if e.type == "session.created").session.id == session_id
    assert "My name is Ziggy Stardust." in texts
    assert "Nice to meet you, Ziggy." in texts
    assert texts[-1] == "What is my name?"


async def test_another_users_conversation_cannot_be_resumed(server: BackgroundServer) -> None:
    async with _client(server).realtime.connect(
        model="local-voice", extra_query={"conversation": "sess_not_mine"}
    ) as conn:
        events = await collect_until(conn, {"error"}, timeout=30)
    assert events[-1].error.code == "conversation_not_found"


async def test_a_reconnect_takes_over_a_conversation_whose_old_socket_is_still_open(
    server: BackgroundServer, llm: FakeOpenAIServer
) -> None:
    llm.replies.extend([ChatReply(text="Noted, the boat is blue."), ChatReply(text="Blue.")])
    api = _client(server)
    async with api.realtime.connect(model="local-voice") as old:
        await old.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        created = await collect_until(old, {"session.updated"}, timeout=30)
        session_id = next(e for e in created if e.type == "session.created").session.id
        await _say(old, "My boat is blue.")
        # The old socket has not been closed (a dropped network looks like this to the server).
        async with api.realtime.connect(
            model="local-voice", extra_query={"conversation": session_id}
        ) as new:
            started = await collect_until(new, {"session.created"}, timeout=30)
            ended = await collect_until(old, {"error"}, timeout=30)
            await new.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            await collect_until(new, {"session.updated"}, timeout=30)
            await _say(new, "What colour is my boat?")
    assert started[-1].session.id == session_id
    assert ended[-1].error.code == "session_taken_over"
    texts = [m.get("content") for m in _sent_messages(llm)]
    assert "My boat is blue." in texts
    assert texts[-1] == "What colour is my boat?"
