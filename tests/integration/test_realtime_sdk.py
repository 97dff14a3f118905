"""The official openai SDK's realtime client against a live server, with real speech."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.conftest import SpeechClip
from tests.integration.conftest import LiveServer
from tests.integration.realtime_client import (
    collect_until,
    reply_audio_bytes,
    reply_transcript,
    silence24,
    stream_pcm24,
    to_pcm24,
    types,
)
from voxdialog.testing.signals import load_wav_pcm16
from voxdialog.testing.wer import word_error_rate

pytestmark = [pytest.mark.models, pytest.mark.slow]

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


def client(server: LiveServer, key: str | None = None) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key or server.api_key, base_url=f"{server.base_url}/v1")


async def speak_command(server: LiveServer, text: str) -> bytes:
    """A spoken command as 24 kHz PCM, synthesized by the server's own /v1/audio/speech."""
    async with client(server) as api:
        response = await api.audio.speech.create(
            model="tts-1", voice="alloy", input=text, response_format="pcm"
        )
        return response.content


async def voice_turn(conn: Any, pcm24: bytes, *, speed: float = 1.0) -> list[Any]:
    """Stream one utterance followed by silence; collect events until the response is done."""
    sender = asyncio.create_task(
        stream_pcm24(conn, silence24(300) + pcm24 + silence24(1500), speed=speed)
    )
    try:
        return await collect_until(conn, {"response.done"}, timeout=90)
    finally:
        await sender


async def test_connect_update_and_a_spoken_turn_with_recorded_speech(
    live_server: LiveServer, speech_manifest: dict[str, SpeechClip]
) -> None:
    clip = speech_manifest["librispeech_test_clean/1089-134691-0001.wav"]
    pcm = to_pcm24(load_wav_pcm16(clip.path).pcm)
    async with client(live_server).realtime.connect(model="local-voice") as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        assert created.session.audio.input.turn_detection.silence_duration_ms == 500
        await conn.session.update(session=VOICE_SESSION)
        updated = await conn.recv()
        assert updated.type == "session.updated"
        assert updated.session.audio.input.transcription.model == "whisper-1"
        events = await voice_turn(conn, pcm, speed=2.0)
    names = types(events)
    for expected in (
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_audio.delta",
        "response.output_audio_transcript.done",
        "response.done",
    ):
        assert expected in names, expected
    assert (
        names.index("input_audio_buffer.speech_started")
        < names.index("input_audio_buffer.speech_stopped")
        < names.index("response.created")
    )
    transcript = next(
        e for e in events if e.type == "conversation.item.input_audio_transcription.completed"
    )
    assert word_error_rate(clip.transcript, transcript.transcript) <= 0.35
    assert reply_audio_bytes(events) > 24_000 * 2 * 0.5  # at least half a second of speech
    assert reply_transcript(events)
    done = events[-1]
    assert done.response.status == "completed"


async def test_a_task_added_by_voice_is_listed_later_in_the_same_session(
    live_server: LiveServer,
) -> None:
    add = await speak_command(live_server, "Add a task to water the plants on Friday.")
    ask = await speak_command(live_server, "What are my tasks?")
    async with client(live_server).realtime.connect(model="local-voice") as conn:
        await conn.session.update(session=VOICE_SESSION)
        first = await voice_turn(conn, add, speed=2.0)
        heard = next(
            e for e in first if e.type == "conversation.item.input_audio_transcription.completed"
        )
        assert "plant" in heard.transcript.lower()
        assert "plant" in reply_transcript(first).lower()
        second = await voice_turn(conn, ask, speed=2.0)
    assert "plant" in reply_transcript(second).lower()
    assert reply_audio_bytes(second) > 0


async def test_talking_over_a_reply_cancels_it_and_truncation_cuts_the_stored_text(
    live_server: LiveServer,
) -> None:
    question = await speak_command(live_server, "What can you do?")
    interruption = await speak_command(live_server, "Add a task to buy milk.")
    async with client(live_server).realtime.connect(model="local-voice") as conn:
        await conn.session.update(session=VOICE_SESSION)
        sender = asyncio.create_task(
            stream_pcm24(conn, silence24(300) + question + silence24(700), speed=4.0)
        )
        # Wait for the reply's first audio, so there is something to talk over (under load the
        # reply may otherwise be cancelled before it has an output item).
        events = await collect_until(conn, {"response.output_audio.delta"}, timeout=60)
        await sender
        # Talk over the reply right away, in real time.
        talker = asyncio.create_task(stream_pcm24(conn, interruption + silence24(1500)))
        events += await collect_until(conn, {"input_audio_buffer.speech_started"}, timeout=30)
        first_done = next((e for e in events if e.type == "response.done"), None)
        if first_done is None:
            events += await collect_until(conn, {"response.done"}, timeout=30)
            first_done = next(e for e in events if e.type == "response.done")
            assert first_done.response.status == "cancelled"
            assert first_done.response.status_details.reason == "turn_detected"
        assistant_id = next(e.item.id for e in events if e.type == "response.output_item.added")
        await conn.conversation.item.truncate(
            item_id=assistant_id, content_index=0, audio_end_ms=400
        )
        rest = await collect_until(conn, {"conversation.item.truncated"}, timeout=30)
        await conn.conversation.item.retrieve(item_id=assistant_id)
        rest += await collect_until(conn, {"conversation.item.retrieved"}, timeout=30)
        await talker
        rest += await collect_until(conn, {"response.done"}, timeout=90)
    retrieved = next(e for e in rest if e.type == "conversation.item.retrieved")
    full = reply_transcript(events) or first_done.response.output[0].content[0].transcript or ""
    heard = retrieved.item.content[0].transcript or ""
    assert len(heard) < max(len(full), 1)
    assert rest[-1].response.status == "completed"
    assert "milk" in reply_transcript(rest).lower()


async def test_response_cancel_ends_an_active_response_as_cancelled(
    live_server: LiveServer,
) -> None:
    async with client(live_server).realtime.connect(model="local-voice") as conn:
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What can you do?"}],
            }
        )
        await conn.response.create()
        events = await collect_until(conn, {"response.created"}, timeout=30)
        await conn.response.cancel()
        events += await collect_until(conn, {"response.done", "error"}, timeout=30)
    last = events[-1]
    if last.type == "response.done":
        assert last.response.status in ("cancelled", "completed")
    else:  # it had already finished: the benign race the spec names
        assert last.error.code == "response_cancel_not_active"


async def test_a_text_only_session_answers_in_text(live_server: LiveServer) -> None:
    async with client(live_server).realtime.connect(model="local-voice") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Add a task to pay the rent tomorrow."}],
            }
        )
        await conn.response.create()
        events = await collect_until(conn, {"response.done"}, timeout=60)
    names = types(events)
    assert "response.output_text.delta" in names
    assert "response.output_audio.delta" not in names
    text = next(e for e in events if e.type == "response.output_text.done").text
    assert "rent" in text.lower()


async def test_bad_input_gets_error_events_and_the_session_goes_on(
    live_server: LiveServer,
) -> None:
    async with client(live_server).realtime.connect(model="local-voice") as conn:
        await conn.recv()  # session.created
        await conn.send_raw("this is not json")
        await conn.send_raw(json.dumps({"type": "no.such.event", "event_id": "evt_1"}))
        await conn.send_raw(json.dumps({"type": "input_audio_buffer.append", "audio": "%%%"}))
        await conn.send_raw(
            # Above the 1 MiB event cap, below the 2 MiB frame limit: refused, session goes on.
            json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (1536 * 1024)})
        )
        await conn.send_raw(json.dumps({"type": "response.cancel"}))
        await conn.send_raw(json.dumps({"type": "input_audio_buffer.commit"}))
        await conn.send_raw(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "audio": {"output": {"speed": 9}}},
                }
            )
        )
        await conn.send_raw(
            json.dumps(
                {
                    "type": "conversation.item.truncate",
                    "item_id": "item_nope",
                    "content_index": 0,
                    "audio_end_ms": 10,
                }
            )
        )
        errors = await collect_until(conn, {"error"}, count=8, timeout=30)
        await conn.session.update(session={"type": "realtime", "instructions": "Be brief."})
        after = await collect_until(conn, {"session.updated"}, timeout=30)
    codes = [e.error.code for e in errors if e.type == "error"]
    assert codes == [
        "invalid_json",
        "invalid_value",
        "invalid_value",
        "message_too_large",
        "response_cancel_not_active",
        "input_audio_buffer_commit_empty",
        "invalid_value",
        "item_not_found",
    ]
    unknown = [e for e in errors if e.type == "error"][1]
    assert unknown.error.event_id == "evt_1"
    assert after[-1].session.instructions == "Be brief."


async def test_a_wrong_key_is_refused_at_the_handshake(live_server: LiveServer) -> None:
    import websockets

    async with websockets.connect(
        f"{live_server.ws_url}/v1/realtime?model=local-voice",
        additional_headers={"Authorization": "Bearer wrong"},
    ) as ws:
        event = json.loads(await ws.recv())
        assert event["type"] == "error"
        assert event["error"]["code"] == "invalid_api_key"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 3000


async def test_a_browser_connects_with_a_page_token_as_subprotocol(
    live_server: LiveServer,
) -> None:
    import httpx
    import websockets

    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        token = (await http.post("/api/realtime-token")).json()["token"]
    async with websockets.connect(
        f"{live_server.ws_url}/v1/realtime?model=local-voice",
        subprotocols=["realtime", f"openai-insecure-api-key.{token}"],
    ) as ws:
        assert ws.subprotocol == "realtime"
        assert json.loads(await ws.recv())["type"] == "session.created"
    async with websockets.connect(
        f"{live_server.ws_url}/v1/realtime?model=local-voice",
        subprotocols=["realtime", f"openai-insecure-api-key.{token}x"],
    ) as ws:
        refused = json.loads(await ws.recv())
    assert refused["error"]["code"] == "invalid_api_key"
