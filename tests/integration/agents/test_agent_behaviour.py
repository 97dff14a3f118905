"""What a bound agent changes in a Realtime session: greeting, voice, tools, and choosing it.

The agent is named at the handshake (``?agent=``) or with the ``session.voxdialog.agent``
field of ``session.update`` while the conversation has not started.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.agents.conftest import (
    CLOUD_TTS,
    PERSONA_LLM,
    ask,
    bearer,
    new_agent,
    realtime,
    register,
)
from tests.integration.realtime_client import (
    collect_until,
    reply_audio_bytes,
    reply_transcript,
    types,
)
from voxdialog.brain.tool_specs import TOOL_GUIDANCE
from voxdialog.testing.fake_openai import ChatReply, FakeOpenAIServer
from voxdialog.testing.server import BackgroundServer

pytestmark = [pytest.mark.models, pytest.mark.slow]

GREETING = "Ahoy! Captain Vox at your service."


async def messages(http: httpx.AsyncClient, token: str, session_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/api/conversations/{session_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["messages"]
    return found


async def test_a_new_conversation_opens_with_the_agents_greeting_spoken(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, greeting=GREETING)
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice", extra_query={"agent": agent["id"]}) as c:
        created = await c.recv()
        # No session.update from this client: the greeting comes after a short grace.
        events = await collect_until(c, {"response.done"}, timeout=60)
    assert events[-1].response.status == "completed"
    assert reply_transcript(events) == GREETING
    assert reply_audio_bytes(events) > 0
    stored = await messages(http, token, created.session.id)
    assert [(m["role"], m["text"]) for m in stored] == [("assistant", GREETING)]


async def test_a_resumed_conversation_is_not_greeted_again(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, greeting=GREETING)
    api = realtime(server, token)
    query = {"agent": agent["id"]}
    async with api.realtime.connect(model="local-voice", extra_query=query) as c:
        session_id = (await c.recv()).session.id
        await collect_until(c, {"response.done"}, timeout=60)
    async with api.realtime.connect(
        model="local-voice", extra_query={**query, "conversation": session_id}
    ) as c:
        await c.recv()
        await c.session.update(session={"type": "realtime", "instructions": "Be brief."})
        events = await ask(c, "Add buy rope to my list.")
    # Only the response that was asked for: no second greeting before it.
    assert types(events).count("response.created") == 1
    assert GREETING not in reply_transcript(events)
    stored = await messages(http, token, session_id)
    assert [m["text"] for m in stored].count(GREETING) == 1


async def test_a_client_that_speaks_first_is_not_talked_over(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, greeting=GREETING)
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice", extra_query={"agent": agent["id"]}) as c:
        await c.recv()
        events = await ask(c, "Add buy sails to my list.")
    assert types(events).count("response.created") == 1
    assert "sails" in reply_transcript(events).lower()


async def test_the_agents_voice_is_the_sessions_voice_and_reaches_its_tts(
    server: BackgroundServer, http: httpx.AsyncClient, fake: FakeOpenAIServer
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, tts=[CLOUD_TTS], voice={"voice": "nova"})
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice", extra_query={"agent": agent["id"]}) as c:
        created = await c.recv()
        assert created.session.audio.output.voice == "nova"
        events = await ask(c, "Add buy a map to my list.")
    assert reply_audio_bytes(events) > 0
    assert {r.json["voice"] for r in fake.requests_to("/audio/speech")} == {"nova"}


async def test_session_update_chooses_the_agent_before_the_conversation_starts(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(
        http,
        token,
        name="Harbour master",
        greeting=GREETING,
        turn_detection={"silence_duration_ms": 1300},
    )
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice") as c:
        created = await c.recv()
        await c.session.update(
            session={"type": "realtime", "voxdialog": {"agent": "harbour master"}}  # type: ignore[typeddict-unknown-key]
        )
        updated = await collect_until(c, {"session.updated"})
        session = updated[-1].session
        # The greeting is the chosen agent's, spoken once the client has set the session up.
        greeting = await collect_until(c, {"response.done"}, timeout=60)
        # Once the conversation has begun, the agent stays.
        await c.session.update(
            session={"type": "realtime", "voxdialog": {"agent": "default"}}  # type: ignore[typeddict-unknown-key]
        )
        refused = await collect_until(c, {"error"})
    assert session.model_extra is not None
    assert session.model_extra["voxdialog"] == {"agent": agent["id"]}
    assert session.audio.input.turn_detection.silence_duration_ms == 1300
    assert reply_transcript(greeting) == GREETING
    assert refused[-1].error.param == "session.voxdialog.agent"
    listed = await http.get(f"/api/voice-sessions/{created.session.id}", headers=bearer(token))
    assert listed.json()["agent"] == agent["id"]


async def test_an_unknown_agent_in_session_update_is_an_error_and_the_session_goes_on(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    token = (await register(http))["access_token"]
    stranger = (await register(http))["access_token"]
    foreign = await new_agent(http, stranger)
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice") as c:
        await c.recv()
        for ref in ("no-such-agent", foreign["id"]):
            await c.session.update(
                session={"type": "realtime", "voxdialog": {"agent": ref}}  # type: ignore[typeddict-unknown-key]
            )
            (error,) = [e for e in await collect_until(c, {"error"}) if e.type == "error"]
            assert (error.error.code, error.error.param) == (
                "agent_not_found",
                "session.voxdialog.agent",
            )
        await c.session.update(
            session={"type": "realtime", "voxdialog": {"agent": 7}}  # type: ignore[typeddict-unknown-key]
        )
        (bad,) = [e for e in await collect_until(c, {"error"}) if e.type == "error"]
        assert bad.error.code == "invalid_value"
        events = await ask(c, "Add buy tar to my list.")
    assert "tar" in reply_transcript(events).lower()


async def test_the_model_is_offered_only_the_agents_tools(
    server: BackgroundServer, http: httpx.AsyncClient, fake: FakeOpenAIServer
) -> None:
    token = (await register(http))["access_token"]
    reader = await new_agent(http, token, llm=[PERSONA_LLM], tools=["list_tasks"])
    talker = await new_agent(http, token, llm=[PERSONA_LLM], tools=[])
    api = realtime(server, token)
    for agent in (reader, talker):
        fake.replies.append(ChatReply(text="Aye."))
        async with api.realtime.connect(
            model="local-voice", extra_query={"agent": agent["id"]}
        ) as c:
            await c.recv()
            await ask(c, "What can you do?")
    with_tools, without = fake.requests_to("/chat/completions")
    assert [t["function"]["name"] for t in with_tools.json["tools"]] == ["list_tasks"]
    assert TOOL_GUIDANCE in with_tools.json["messages"][0]["content"]
    assert "tools" not in without.json
    assert "tool_choice" not in without.json
    assert TOOL_GUIDANCE not in without.json["messages"][0]["content"]


async def test_without_a_model_the_assistant_declines_actions_the_agent_lacks(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, tools=["list_tasks"])
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice", extra_query={"agent": agent["id"]}) as c:
        await c.recv()
        declined = await ask(c, "Add buy milk to my list.")
        listed = await ask(c, "What are my tasks?")
    assert "not set up" in reply_transcript(declined)
    tasks = await http.get("/api/tasks", headers=bearer(token))
    assert tasks.json()["data"] == []
    assert "empty" in reply_transcript(listed).lower()


async def test_turn_detection_set_by_a_client_keeps_the_agents_values_it_leaves_out(
    server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, turn_detection={"silence_duration_ms": 1300})
    api = realtime(server, token)
    async with api.realtime.connect(model="local-voice", extra_query={"agent": agent["id"]}) as c:
        await c.recv()
        for turn_detection in (None, {"type": "server_vad", "create_response": True}):
            await c.session.update(
                session={"type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}}
            )
            updated = await collect_until(c, {"session.updated"})
        session = updated[-1].session
    assert session.audio.input.turn_detection.silence_duration_ms == 1300
    assert session.audio.output.voice == "alloy"  # no agent voice: the default one
