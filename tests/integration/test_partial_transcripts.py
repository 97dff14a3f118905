"""Partial transcripts while the person talks (``session.voxdialog.partial_transcripts``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.conftest import SpeechClip
from tests.integration.conftest import LiveServer
from tests.integration.realtime_client import collect_until, silence24, stream_pcm24, to_pcm24
from voxdialog.testing.signals import load_wav_pcm16

pytestmark = [pytest.mark.models, pytest.mark.slow]

PARTIAL = "voxdialog.input_audio_transcription.partial"
CLIP = "librispeech_test_other/367-130732-0004.wav"  # 5.9 s: "a book could be written ..."


def session(*, partials: bool) -> dict[str, Any]:
    return {
        "type": "realtime",
        "output_modalities": ["text"],
        "audio": {
            "input": {
                "transcription": {"model": "whisper-1"},
                # A long window: the clip's pauses do not end the turn.
                "turn_detection": {
                    "type": "server_vad",
                    "silence_duration_ms": 1200,
                    "create_response": False,
                },
            }
        },
        "voxdialog": {"partial_transcripts": partials},
    }


async def spoken_turn(server: LiveServer, pcm24: bytes, *, partials: bool) -> list[Any]:
    api = AsyncOpenAI(api_key=server.api_key, base_url=f"{server.base_url}/v1")
    async with api.realtime.connect(model="local-voice") as conn:
        await conn.session.update(session=session(partials=partials))  # type: ignore[arg-type]
        await collect_until(conn, {"session.updated"})
        sender = asyncio.create_task(stream_pcm24(conn, silence24(300) + pcm24 + silence24(2000)))
        try:
            return await collect_until(
                conn, {"conversation.item.input_audio_transcription.completed"}, timeout=90
            )
        finally:
            await sender


async def test_partial_transcripts_arrive_while_the_person_is_still_talking(
    live_server: LiveServer, speech_manifest: dict[str, SpeechClip]
) -> None:
    pcm24 = to_pcm24(load_wav_pcm16(speech_manifest[CLIP].path).pcm)
    events = await spoken_turn(live_server, pcm24, partials=True)
    names = [e.type for e in events]
    started = next(e for e in events if e.type == "input_audio_buffer.speech_started")
    partials = [e for e in events if e.type == PARTIAL]
    final = events[-1]
    assert partials, names
    # Each arrives during the turn, for the item being spoken, before the speech ended.
    assert names.index(PARTIAL) < names.index("input_audio_buffer.speech_stopped")
    assert {e.item_id for e in partials} == {started.item_id} == {final.item_id}
    # They grow with the speech, and the first words are those of the final transcript.
    assert len(partials[-1].transcript) >= len(partials[0].transcript)
    first_word = partials[0].transcript.split()[0].strip(".,").lower()
    assert first_word in final.transcript.lower()


async def test_without_asking_a_client_gets_no_partials(
    live_server: LiveServer, speech_manifest: dict[str, SpeechClip]
) -> None:
    pcm24 = to_pcm24(load_wav_pcm16(speech_manifest[CLIP].path).pcm)
    events = await spoken_turn(live_server, pcm24, partials=False)
    assert PARTIAL not in [e.type for e in events]
    assert events[-1].transcript
