"""``voxdialog converse IN --out OUT``: one spoken turn from a file, through the real pipeline."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from voxdialog.agents.stages import UnknownAgentError, turn_config
from voxdialog.audio.codecs import encode_file
from voxdialog.audio.formats import PIPELINE_RATE, AudioChunk
from voxdialog.cli_checks import output_format, read_audio
from voxdialog.pipeline.config import SessionConfig
from voxdialog.pipeline.events import (
    InputCommitted,
    LLMUnavailable,
    ResponseAudio,
    ResponseEnded,
    SessionEvent,
    TranscriptionCompleted,
    TranscriptionFailed,
    TurnFailed,
)
from voxdialog.pipeline.ids import new_id
from voxdialog.pipeline.recorder import SessionInfo
from voxdialog.pipeline.session import VoiceSession
from voxdialog.providers.base import VoiceSettings
from voxdialog.runtime import Runtime
from voxdialog.settings import Settings

_TURN_TIMEOUT_S = 120.0


async def converse(settings: Settings, source: Path, out: Path, *, agent: str | None = None) -> int:
    """Hear ``source``, answer into ``out``; print what was heard, said and how long it took.

    ``agent`` names a stored agent of the local administrator's tenant (id or name); without
    it the local administrator's default agent answers.
    """
    clip = await read_audio(source, settings.limits)  # before the models: a bad file is quick
    runtime = Runtime(settings)
    await runtime.start()
    if runtime.vad is None or runtime.stt is None or runtime.tts is None:
        raise RuntimeError("models are not loaded")
    if runtime.local_scope is None:
        raise RuntimeError("no local user")
    try:
        stages = await runtime.agent_for(runtime.local_scope, agent)
    except UnknownAgentError:
        await runtime.close()
        print(f"voxdialog: no agent named {agent!r}", file=sys.stderr)
        return 2
    done = asyncio.Event()
    heard: list[str] = []
    audio = bytearray()
    rate = 22050
    ended: list[ResponseEnded] = []
    problems: list[str] = []
    turns: list[str] = []  # the turns the VAD heard

    async def on_event(event: SessionEvent) -> None:
        nonlocal rate
        match event:
            case InputCommitted():
                turns.append(event.item.id)
            case TranscriptionCompleted(transcript=text):
                heard.append(text)
                if not text.strip():  # nothing to answer: no reply will come
                    done.set()
            case TranscriptionFailed(message=message):
                problems.append(message)
                done.set()
            case ResponseAudio(chunk=chunk):
                audio.extend(chunk.pcm)
                rate = chunk.sample_rate
            case ResponseEnded():
                ended.append(event)
                done.set()
            case TurnFailed(message=message):
                problems.append(message)
            case LLMUnavailable(error=error):
                problems.append(f"language model unavailable: {error}")

    session_id = new_id("sess")
    session = VoiceSession(
        info=SessionInfo(
            session_id,
            runtime.local_scope,
            settings.model_name,
            agent=stages.agent_id,
            client="cli",
        ),
        config=SessionConfig(
            turn=turn_config(stages.turns),
            transcribe_input=True,
            speculative_stt=stages.turns.speculative_stt,
            voice=VoiceSettings(voice=stages.voice or "default"),
        ),
        vad=runtime.vad.open_stream(PIPELINE_RATE),
        stt=stages.stt,
        tts=stages.tts,
        brain=stages.brain.open_session(runtime.local_scope),
        emit=on_event,
        recorder=runtime.recorder,
    )
    started = time.perf_counter()
    timed_out = False
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(session.run())
            # The file is one turn: follow it with enough silence to end it.
            silence = b"\x00\x00" * (
                PIPELINE_RATE * (stages.turns.silence_duration_ms + 700) // 1000
            )
            # Returns once the VAD has heard every frame: without a turn, no reply will come.
            await session.append_audio(clip.pcm + silence)
            try:
                if turns:
                    async with asyncio.timeout(_TURN_TIMEOUT_S):
                        await done.wait()
            except TimeoutError:
                timed_out = True
            finally:
                session.close()
    finally:
        await runtime.close()
    elapsed = (time.perf_counter() - started) * 1000
    if not ended:
        return _no_answer(source, heard, problems, timed_out=timed_out)
    reply = ended[-1].item
    encoded = encode_file(AudioChunk(bytes(audio), rate), output_format(out))
    await asyncio.to_thread(out.write_bytes, encoded)
    print(f"heard: {' '.join(heard)}")
    print(f"said:  {reply.text}")
    timings = " ".join(f"{k}={v}" for k, v in sorted(reply.timings.items()))
    print(f"timings (ms): {timings} total={elapsed:.0f}")
    print(f"wrote {out} ({len(audio) / 2 / rate:.1f} s)", file=sys.stderr)
    return 0


def _no_answer(source: Path, heard: list[str], problems: list[str], *, timed_out: bool) -> int:
    """Say in one line why no answer came: no speech, a failed stage, or no reply in time."""
    if problems:
        print(f"voxdialog: no answer ({'; '.join(problems)})", file=sys.stderr)
    elif timed_out:  # checked before "no speech": that must be said without waiting
        print(f"voxdialog: no answer within {_TURN_TIMEOUT_S:g} s", file=sys.stderr)
    elif not any(text.strip() for text in heard):
        print(f"voxdialog: no speech heard in {source}", file=sys.stderr)
    else:
        print("voxdialog: no answer", file=sys.stderr)
    return 1
