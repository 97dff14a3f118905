"""Realtime sessions bound to stored agents: their chains, persona, voice and turn taking."""

from __future__ import annotations

import httpx
import pytest
import websockets

from tests.integration.agents.conftest import (
    CLOUD_TTS,
    PERSONA_LLM,
    ask,
    bearer,
    new_agent,
    realtime,
    register,
)
from tests.integration.realtime_client import reply_audio_bytes, reply_transcript
from voxdialog.testing.fake_openai import ChatReply, FakeOpenAIServer
from voxdialog.testing.server import BackgroundServer

pytestmark = [pytest.mark.models, pytest.mark.slow]

PIRATE = "You are Captain Vox. Answer every question like a pirate would."


async def test_a_session_binds_the_agent_named_by_id_or_name(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(
        http, token, name="Patient", turn_detection={"silence_duration_ms": 1400}
    )
    api = realtime(server, token)
    for ref in (agent["id"], "patient"):
        async with api.realtime.connect(model="local-voice", extra_query={"agent": ref}) as conn:
            created = await conn.recv()
        assert created.type == "session.created"
        turn_detection = created.session.audio.input.turn_detection
        assert turn_detection.silence_duration_ms == 1400
        assert turn_detection.prefix_padding_ms == server.settings.turns.prefix_padding_ms
    async with api.realtime.connect(model="local-voice") as conn:
        default = await conn.recv()
    silence = default.session.audio.input.turn_detection.silence_duration_ms
    assert silence == server.settings.turns.silence_duration_ms


async def test_another_tenants_agent_is_not_found_and_the_socket_closes(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    owner = (await register(http))["access_token"]
    stranger = (await register(http))["access_token"]
    agent = await new_agent(http, owner)
    for ref in (agent["id"], agent["name"], "no-such-agent"):
        api = realtime(server, stranger)
        async with api.realtime.connect(model="local-voice", extra_query={"agent": ref}) as conn:
            refused = await conn.recv()
            assert refused.type == "error"
            assert refused.error.code == "agent_not_found"
            with pytest.raises(websockets.ConnectionClosed):
                await conn.recv()


async def test_a_persona_answers_through_its_own_llm_with_its_system_prompt(
    server: BackgroundServer, http: httpx.AsyncClient, fake: FakeOpenAIServer
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, system_prompt=PIRATE, llm=[PERSONA_LLM])
    fake.replies.append(ChatReply(text="Arr, the sea be calm today."))
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice", extra_query={"agent": agent["id"]}) as c:
        events = await ask(c, "How is the sea today?")
    assert events[-1].response.status == "completed"
    assert reply_transcript(events) == "Arr, the sea be calm today."
    assert reply_audio_bytes(events) > 0
    (request,) = fake.requests_to("/chat/completions")
    assert request.json["model"] == "persona-model"
    system = request.json["messages"][0]
    assert system["role"] == "system"
    assert PIRATE in system["content"]
    assert request.json["messages"][-1]["content"] == "How is the sea today?"


async def test_without_any_llm_a_persona_falls_back_to_the_built_in_assistant(
    server: BackgroundServer, http: httpx.AsyncClient, fake: FakeOpenAIServer
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, system_prompt=PIRATE)
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice", extra_query={"agent": agent["id"]}) as c:
        events = await ask(c, "Add buy milk to my list.")
    assert "milk" in reply_transcript(events).lower()
    assert not fake.requests_to("/chat/completions")


async def test_the_agents_tts_chain_speaks_at_the_agents_rate(
    server: BackgroundServer, http: httpx.AsyncClient, fake: FakeOpenAIServer
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, tts=[CLOUD_TTS], voice={"rate": 1.5})
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice", extra_query={"agent": agent["id"]}) as c:
        await c.recv()  # session.created
        await c.session.update(session={"type": "realtime", "audio": {"output": {"speed": 1.2}}})
        events = await ask(c, "Add buy bread to my list.")
    assert reply_audio_bytes(events) > 0
    spoken = fake.requests_to("/audio/speech")
    assert spoken
    # The session asked for 1.2, the agent speaks 1.5 times as fast as asked.
    assert {round(r.json["speed"], 6) for r in spoken} == {1.8}
    assert {r.json["model"] for r in spoken} == {"tts-1"}


async def test_a_users_default_agent_binds_when_the_session_names_none(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, turn_detection={"silence_duration_ms": 1700})
    saved = await http.put(
        "/api/users/me/settings", json={"default_agent": agent["id"]}, headers=bearer(token)
    )
    assert saved.status_code == 200, saved.text
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice") as conn:
        preferred = await conn.recv()
    assert preferred.session.audio.input.turn_detection.silence_duration_ms == 1700
    # "default" always means the server's own agent.
    async with api.realtime.connect(model="local-voice", extra_query={"agent": "default"}) as c:
        server_default = await c.recv()
    silence = server_default.session.audio.input.turn_detection.silence_duration_ms
    assert silence == server.settings.turns.silence_duration_ms
    # A deleted default agent no longer applies; sessions still open.
    await http.delete(f"/api/agents/{agent['id']}", headers=bearer(token))
    async with api.realtime.connect(model="local-voice") as conn:
        after_delete = await conn.recv()
    assert after_delete.type == "session.created"
    silence = after_delete.session.audio.input.turn_detection.silence_duration_ms
    assert silence == server.settings.turns.silence_duration_ms
