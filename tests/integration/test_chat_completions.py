"""``/v1/chat/completions`` through the official openai SDK: the agent as a chat model."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI

from tests.integration.conftest import LiveServer

pytestmark = [pytest.mark.models]


def client(server: LiveServer) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=server.api_key, base_url=f"{server.base_url}/v1", max_retries=0)


async def test_the_agent_streams_an_answer_to_the_sdk(live_server: LiveServer) -> None:
    async with client(live_server) as api:
        stream = await api.chat.completions.create(
            model="local-voice",
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Add a task to water the ferns tomorrow."}],
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "ferns" in text.lower()
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0


async def test_a_non_streamed_answer_uses_the_same_agent_and_tasks(
    live_server: LiveServer,
) -> None:
    async with client(live_server) as api:
        await api.chat.completions.create(
            model="local-voice",
            messages=[{"role": "user", "content": "Add a task to sharpen the pencils."}],
        )
        listed = await api.chat.completions.create(
            model="local-voice", messages=[{"role": "user", "content": "What are my tasks?"}]
        )
    assert "pencils" in (listed.choices[0].message.content or "").lower()
    assert listed.choices[0].finish_reason == "stop"


async def test_unknown_models_and_empty_requests_are_rejected(live_server: LiveServer) -> None:
    async with client(live_server) as api:
        with pytest.raises(openai.NotFoundError):
            await api.chat.completions.create(
                model="gpt-9", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.BadRequestError):
            await api.chat.completions.create(
                model="local-voice", messages=[{"role": "system", "content": "be nice"}]
            )
