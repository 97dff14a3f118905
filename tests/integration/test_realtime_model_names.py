"""Model names through the official openai SDK: the Realtime handshake, ``session.update`` and
``/v1/chat/completions`` accept the same names (the served id, its aliases, OpenAI's realtime
ids such as ``gpt-realtime`` that the Agents SDK sends) and refuse the same others."""

from __future__ import annotations

import openai
import pytest
import websockets
from openai import AsyncOpenAI

from tests.integration.conftest import LiveServer

pytestmark = [pytest.mark.models]


def client(server: LiveServer) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=server.api_key, base_url=f"{server.base_url}/v1", max_retries=0)


@pytest.mark.parametrize("model", ["gpt-realtime", "local-voice"])
async def test_the_agents_sdk_first_update_with_gpt_realtime_is_accepted(
    live_server: LiveServer, model: str
) -> None:
    # openai-agents' RealtimeRunner: connect, then session.update naming model "gpt-realtime".
    async with client(live_server) as api, api.realtime.connect(model=model) as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        await conn.session.update(
            session={"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}
        )
        updated = await conn.recv()
        assert updated.type == "session.updated", updated
        assert updated.session.model == model  # the same session model: no change
        assert updated.session.instructions == "Be brief."
        await conn.session.update(session={"type": "realtime", "model": "gpt-9"})
        refused = await conn.recv()
        assert refused.type == "error"
        assert refused.error.param == "session.model"


async def test_a_model_the_handshake_does_not_serve_is_refused(live_server: LiveServer) -> None:
    async with client(live_server) as api, api.realtime.connect(model="gpt-9") as conn:
        refused = await conn.recv()
        assert refused.type == "error"
        assert refused.error.code == "invalid_model"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await conn.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4000


@pytest.mark.parametrize("model", ["gpt-realtime", "gpt-4o-realtime-preview", "local-voice"])
async def test_chat_completions_accept_the_realtime_model_names(
    live_server: LiveServer, model: str
) -> None:
    async with client(live_server) as api:
        answer = await api.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Add a task to feed the cat."}]
        )
    assert answer.model == model
    assert answer.choices[0].message.content


async def test_chat_completions_refuse_what_the_handshake_refuses(live_server: LiveServer) -> None:
    async with client(live_server) as api:
        with pytest.raises(openai.NotFoundError):
            await api.chat.completions.create(
                model="gpt-9", messages=[{"role": "user", "content": "hi"}]
            )
