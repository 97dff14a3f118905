"""Client commands on a session state built from fakes: no socket, no models."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.realtime.conftest import Edge, agent, b64, open_edge
from voxdialog.audio.resample import resample
from voxdialog.pipeline.events import (
    InputCommitted,
    ItemAdded,
    ItemDeleted,
    ResponseEnded,
    ResponseStarted,
    TranscriptionCompleted,
)
from voxdialog.realtime.client_events import parse_client_event
from voxdialog.realtime.commands import apply
from voxdialog.realtime.errors import CommandError
from voxdialog.testing.signals import silence, tone


async def send(edge: Edge, raw: dict[str, object]) -> list[dict[str, object]]:
    return await apply(edge.state, parse_client_event(raw))


async def refused(edge: Edge, raw: dict[str, object]) -> tuple[str, str | None]:
    with pytest.raises(CommandError) as caught:
        await send(edge, raw)
    return caught.value.code, caught.value.param


async def test_session_update_answers_with_the_merged_session(edge: Edge) -> None:
    out = await send(
        edge,
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"input": {"format": {"type": "audio/pcmu"}}},
            },
        },
    )
    assert [e["type"] for e in out] == ["session.updated"]
    assert edge.state.session["instructions"] == "Be brief."
    assert edge.state.voice.config.instructions == "Be brief."
    # A new input format takes a new decoder: 1 s of μ-law (8000 bytes at 8 kHz) decodes to
    # about 1 s at 16 kHz (32000 bytes, less the ~100 ms the resampler still holds). As 24 kHz
    # PCM the same bytes would be 167 ms.
    decoded = [edge.state.decode_audio(b64(b"\xff" * 800)) for _ in range(10)]
    assert 25_600 <= sum(map(len, decoded)) <= 32_000


async def test_an_invalid_update_changes_nothing(edge: Edge) -> None:
    before = dict(edge.state.session)
    code, param = await refused(
        edge, {"type": "session.update", "session": {"audio": {"output": {"speed": 9}}}}
    )
    assert (code, param) == ("invalid_value", "session.audio.output.speed")
    assert edge.state.session == before


async def test_spoken_audio_becomes_a_transcribed_user_turn_and_a_reply(edge: Edge) -> None:
    await send(
        edge,
        {
            "type": "session.update",
            "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}}},
        },
    )
    # The input is 24 kHz PCM: the tone and silence are made at 16 kHz, so send them resampled.
    pcm = resample(tone(640) + silence(900), 16_000, 24_000)
    await send(edge, {"type": "input_audio_buffer.append", "audio": b64(pcm)})
    await edge.wait_for(ResponseEnded)
    assert edge.of(InputCommitted)
    user = edge.state.voice.conversation.last_message("user")
    assert user is not None
    assert user.text == "add milk to my list"
    ended = edge.of(ResponseEnded)[0]
    assert ended.status == "completed"
    assert "milk" in (ended.item.text or "").lower()


async def test_malformed_audio_and_short_commits_are_refused(edge: Edge) -> None:
    assert await refused(edge, {"type": "input_audio_buffer.append", "audio": "%%%"}) == (
        "invalid_value",
        "audio",
    )
    await send(
        edge,
        {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}},
    )
    assert await refused(edge, {"type": "input_audio_buffer.commit"}) == (
        "input_audio_buffer_commit_empty",
        None,
    )


async def test_items_are_created_retrieved_and_deleted(edge: Edge) -> None:
    item = {
        "id": "item_a",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    }
    await send(edge, {"type": "conversation.item.create", "item": item})
    added = edge.of(ItemAdded)[0]
    assert (added.item.id, added.item.text, added.previous_item_id) == ("item_a", "hello", None)
    retrieved = await send(edge, {"type": "conversation.item.retrieve", "item_id": "item_a"})
    assert retrieved[0]["item"]["content"] == [{"type": "input_text", "text": "hello"}]
    await send(edge, {"type": "conversation.item.delete", "item_id": "item_a"})
    assert edge.of(ItemDeleted)
    for kind in ("retrieve", "delete"):
        assert await refused(edge, {"type": f"conversation.item.{kind}", "item_id": "item_a"}) == (
            "item_not_found",
            "item_id",
        )
    assert await refused(
        edge, {"type": "conversation.item.create", "item": item, "previous_item_id": "nope"}
    ) == ("item_not_found", "previous_item_id")
    assert await refused(
        edge, {"type": "conversation.item.truncate", "item_id": "nope", "audio_end_ms": 1}
    ) == ("item_not_found", "item_id")
    assert await refused(
        edge, {"type": "conversation.item.create", "item": {"type": "message", "role": "robot"}}
    ) == ("invalid_value", "item.role")


async def test_responses_are_created_once_and_cancelled(edge: Edge) -> None:
    edge.state.voice.config.output_audio = False
    await send(edge, {"type": "response.create", "response": {"output_modalities": ["text"]}})
    code, _ = await refused(edge, {"type": "response.create"})
    assert code == "conversation_already_has_active_response"
    await edge.wait_for(ResponseEnded)
    assert edge.of(ResponseStarted)[0].audio is False
    assert await refused(edge, {"type": "response.cancel"}) == ("response_cancel_not_active", None)
    assert await refused(
        edge, {"type": "response.create", "response": {"output_modalities": ["audio", "text"]}}
    ) == ("invalid_value", "response.output_modalities")
    assert await refused(edge, {"type": "output_audio_buffer.clear"}) == ("invalid_value", "type")


async def test_transcription_sessions_do_not_respond() -> None:
    edge = open_edge(kind="transcription")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(edge.state.voice.run())
        assert await refused(edge, {"type": "response.create"}) == ("invalid_value", "type")
        edge.state.voice.close()


async def test_the_agent_is_chosen_before_the_conversation_starts(edge: Edge) -> None:
    support = agent("Support", voice="nova")
    edge.agents["Support"] = support
    out = await send(
        edge, {"type": "session.update", "session": {"voxdialog": {"agent": "Support"}}}
    )
    assert edge.state.agent is support
    session = out[0]["session"]
    assert isinstance(session, dict)
    assert session["voxdialog"]["agent"] == support.agent_id
    assert session["audio"]["output"]["voice"] == "nova"
    await send(
        edge,
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            },
        },
    )
    edge.agents["Other"] = agent("Other")
    code, param = await refused(
        edge, {"type": "session.update", "session": {"voxdialog": {"agent": "Other"}}}
    )
    assert (code, param) == ("invalid_value", "session.voxdialog.agent")
    assert edge.state.agent is support


async def test_the_transcript_event_carries_the_turn_audio_length(edge: Edge) -> None:
    await send(
        edge,
        {
            "type": "session.update",
            "session": {
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": None,
                    }
                }
            },
        },
    )
    await send(
        edge,
        {"type": "input_audio_buffer.append", "audio": b64(resample(tone(500), 16_000, 24_000))},
    )
    await send(edge, {"type": "input_audio_buffer.commit"})
    await edge.wait_for(TranscriptionCompleted)
    done = edge.of(TranscriptionCompleted)[0]
    assert done.transcript == "add milk to my list"
    assert done.audio_seconds == pytest.approx(0.5, abs=0.02)
