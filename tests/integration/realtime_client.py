"""Helpers for driving /v1/realtime with the official openai SDK."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable
from typing import Any

from voxdialog.audio.resample import resample

CHUNK_MS = 40
PCM24_BYTES_PER_MS = 48


def to_pcm24(pcm16k: bytes) -> bytes:
    """16 kHz PCM16 to the protocol's default 24 kHz PCM16."""
    return resample(pcm16k, 16_000, 24_000)


def silence24(ms: int) -> bytes:
    """Digital silence at 24 kHz."""
    return b"\x00\x00" * (24 * ms)


async def stream_pcm24(conn: Any, pcm: bytes, *, speed: float = 1.0) -> None:
    """Append audio in 40 ms chunks, paced at ``speed`` x real time (absolute schedule)."""
    step = CHUNK_MS * PCM24_BYTES_PER_MS
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n, offset in enumerate(range(0, len(pcm), step)):
        await conn.input_audio_buffer.append(
            audio=base64.b64encode(pcm[offset : offset + step]).decode()
        )
        due = start + (n + 1) * CHUNK_MS / 1000 / speed
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


async def collect_until(
    conn: Any, stop: Iterable[str], *, timeout: float = 60.0, count: int = 1
) -> list[Any]:
    """Events until ``count`` events whose type is in ``stop`` arrived."""
    stop_types = set(stop)
    events: list[Any] = []
    seen = 0
    async with asyncio.timeout(timeout):
        async for event in conn:
            events.append(event)
            if event.type in stop_types:
                seen += 1
                if seen >= count:
                    return events
    return events


def types(events: list[Any]) -> list[str]:
    """The event types, in order."""
    return [e.type for e in events]


def reply_transcript(events: list[Any]) -> str:
    """The assistant's spoken transcript from the done event."""
    done = [e for e in events if e.type == "response.output_audio_transcript.done"]
    return done[-1].transcript if done else ""


def reply_audio_bytes(events: list[Any]) -> int:
    """Total decoded bytes of output audio deltas."""
    return sum(
        len(base64.b64decode(e.delta)) for e in events if e.type == "response.output_audio.delta"
    )
