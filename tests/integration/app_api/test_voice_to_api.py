"""What the voice assistant does shows in the app API: tasks, conversations, timings, commands.

The turns go through the official openai SDK's realtime client, signed in with a user's
access token, exactly as an app would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.integration.app_api.conftest import (
    bearer,
    conversation_with_reply,
    error_of,
    eventually,
    realtime,
    register,
    say,
    typed_conversation,
)
from tests.integration.conftest import LiveServer
from tests.integration.realtime_client import collect_until, silence24, stream_pcm24
from voxdialog.db.engine import Database
from voxdialog.db.models import Message, VoiceCommand

pytestmark = pytest.mark.models

WATER = "Add a task to water the plants on Friday"
VOICE_SESSION = {
    "type": "realtime",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
        },
    },
}


def _watering(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [task for task in tasks if "water the plants" in task["title"].lower()]


async def _tasks(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    response = await http.get("/api/tasks", params={"limit": 100}, headers=bearer(token))
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["data"]
    return tasks


async def _ended(http: httpx.AsyncClient, token: str, session_id: str) -> dict[str, Any]:
    """The voice session once the server has closed it."""

    async def check() -> dict[str, Any] | None:
        response = await http.get(f"/api/voice-sessions/{session_id}", headers=bearer(token))
        body: dict[str, Any] = response.json()
        return body if body["status"] == "ended" else None

    return await eventually(check)


async def _rows_of(server: LiveServer, session_id: str) -> tuple[int, int]:
    """How many message and command rows the database holds for a session."""
    db = Database(server.settings.effective_database_url)
    try:
        async with db.sessions() as session:
            messages = await session.scalar(
                select(func.count()).select_from(Message).where(Message.session_id == session_id)
            )
            commands = await session.scalar(
                select(func.count())
                .select_from(VoiceCommand)
                .where(VoiceCommand.session_id == session_id)
            )
    finally:
        await db.close()
    return messages or 0, commands or 0


async def test_a_task_added_by_voice_is_the_users_task_in_the_api(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    owner, stranger = await register(http), await register(http)
    await typed_conversation(live_server, owner, WATER)

    added = _watering(await _tasks(http, owner))
    assert len(added) == 1, added
    task = added[0]
    assert dt.date.fromisoformat(task["due_date"]).weekday() == 4  # a Friday
    assert task["done"] is False
    assert _watering(await _tasks(http, stranger)) == []
    read = await http.get(f"/api/tasks/{task['id']}", headers=bearer(stranger))
    assert read.status_code == 404

    # The app may finish what the voice started, and the assistant sees it.
    done = await http.patch(f"/api/tasks/{task['id']}", json={"done": True}, headers=bearer(owner))
    assert done.json()["completed_at"] is not None
    async with realtime(live_server, owner).realtime.connect(model="local-voice") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        events = await say(conn, "What are my tasks?")
    answer = next(e for e in events if e.type == "response.output_text.done").text
    assert "plant" not in answer.lower()


async def test_the_conversation_shows_both_turns_with_timings_and_the_command(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    token = await register(http)
    session_id = await typed_conversation(live_server, token, WATER)

    conversation = await conversation_with_reply(http, token, session_id)
    assert conversation["id"] == session_id
    assert conversation["object"] == "conversation"
    assert conversation["title"] == WATER
    assert conversation["client"] == "realtime"
    roles = [message["role"] for message in conversation["messages"]]
    assert roles == ["user", "assistant"]
    assert conversation["message_count"] == 2
    user, assistant = conversation["messages"]
    assert user["text"] == WATER
    assert "plant" in assistant["text"].lower()
    assert assistant["timings"], "the assistant message has per-stage timings"
    assert "brain_first_ms" in assistant["timings"]
    assert all(ms >= 0 for ms in assistant["timings"].values())
    assert user["created_at"] <= assistant["created_at"]

    listed = (await http.get("/api/conversations", headers=bearer(token))).json()
    assert [c["id"] for c in listed["data"]] == [session_id]
    assert listed["data"][0]["title"] == WATER

    session = await _ended(http, token, session_id)
    assert session["object"] == "voice_session"
    assert session["ended_at"] is not None
    assert (session["message_count"], session["command_count"]) == (2, 1)
    ended = await http.get("/api/voice-sessions", params={"status": "ended"}, headers=bearer(token))
    active = await http.get(
        "/api/voice-sessions", params={"status": "active"}, headers=bearer(token)
    )
    assert [s["id"] for s in ended.json()["data"]] == [session_id]
    assert active.json()["data"] == []

    commands = await http.get(f"/api/voice-sessions/{session_id}/commands", headers=bearer(token))
    assert commands.status_code == 200
    (command,) = commands.json()["data"]
    assert command["intent"] == "add_task"
    assert command["success"] is True
    assert command["error"] is None
    assert command["text"] == WATER
    assert command["item_id"] == user["item_id"]
    assert 0 < command["confidence"] <= 1
    assert command["processing_ms"] >= 0
    assert command["entities"]


async def test_a_conversation_exports_as_a_file_and_deletes_with_its_rows(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    token = await register(http)
    async with realtime(live_server, token).realtime.connect(model="local-voice") as conn:
        first = await conn.recv()
        session_id = first.session.id
        await say(conn, "Add a task to buy milk")
        await say(conn, "Add a task to call the plumber tomorrow")
        while_open = await http.delete(f"/api/conversations/{session_id}", headers=bearer(token))
        assert while_open.status_code == 409
        assert error_of(while_open)["code"] == "conversation_active"
    await _ended(http, token, session_id)
    conversation = await conversation_with_reply(http, token, session_id)

    exported = await http.get(f"/api/conversations/{session_id}/export", headers=bearer(token))
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="conversation-{session_id}.json"'
    )
    assert exported.headers["content-type"] == "application/json"
    body = exported.json()
    assert body["object"] == "conversation.export"
    assert body["conversation"]["id"] == session_id
    assert body["messages"] == conversation["messages"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"] * 2
    commands = await http.get(f"/api/voice-sessions/{session_id}/commands", headers=bearer(token))
    assert body["commands"] == commands.json()["data"]
    assert [c["text"] for c in body["commands"]] == [
        "Add a task to buy milk",
        "Add a task to call the plumber tomorrow",
    ]
    assert await _rows_of(live_server, session_id) == (4, 2)

    async def deleted() -> bool | None:
        # The socket is closed; the server forgets the live session a moment later.
        response = await http.delete(f"/api/conversations/{session_id}", headers=bearer(token))
        return True if response.status_code == 204 else None

    await eventually(deleted)
    for url in (f"/api/conversations/{session_id}", f"/api/voice-sessions/{session_id}"):
        gone = await http.get(url, headers=bearer(token))
        assert gone.status_code == 404
    assert await _rows_of(live_server, session_id) == (0, 0)  # messages and commands cascade
    titles = {task["title"].lower() for task in await _tasks(http, token)}
    assert {"buy milk", "call the plumber"} <= titles  # the tasks stay


async def test_paging_through_conversations_newest_first(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    token = await register(http)
    made = [
        await typed_conversation(live_server, token, f"Add a task to read chapter {n}")
        for n in range(3)
    ]
    first = await http.get("/api/conversations", params={"limit": 2}, headers=bearer(token))
    rest = await http.get(
        "/api/conversations", params={"limit": 2, "offset": 2}, headers=bearer(token)
    )
    assert first.json()["has_more"] is True
    assert rest.json()["has_more"] is False
    ids = [c["id"] for c in first.json()["data"] + rest.json()["data"]]
    assert ids == made[::-1]


async def _speak(server: LiveServer, token: str, text: str) -> bytes:
    """``text`` as 24 kHz PCM from the server's own /v1/audio/speech."""
    async with realtime(server, token) as api:
        response = await api.audio.speech.create(
            model="tts-1", voice="alloy", input=text, response_format="pcm"
        )
        return response.content


@pytest.mark.slow
async def test_a_spoken_turn_shows_its_stt_and_tts_timings(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    token = await register(http)
    speech = await _speak(live_server, token, "Add a task to water the plants on Friday.")
    async with realtime(live_server, token).realtime.connect(model="local-voice") as conn:
        session_id = (await conn.recv()).session.id
        await conn.session.update(session=VOICE_SESSION)
        sender = asyncio.create_task(
            stream_pcm24(conn, silence24(300) + speech + silence24(1500), speed=2.0)
        )
        try:
            await collect_until(conn, {"response.done"}, timeout=90)
        finally:
            await sender

    conversation = await conversation_with_reply(http, token, session_id)
    user, assistant = conversation["messages"]
    assert "plant" in user["text"].lower()
    assert user["audio_ms"] > 0
    assert {"end_of_turn_ms", "stt_wait_ms"} <= set(user["timings"])
    assert {"end_of_speech_to_first_audio_ms", "tts_first_audio_ms"} <= set(assistant["timings"])
    assert "plant" in conversation["title"].lower()
    assert len(_watering(await _tasks(http, token))) == 1
