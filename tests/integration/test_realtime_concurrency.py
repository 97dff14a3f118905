"""Many sessions at once; G.711; one client sending garbage disturbs nobody."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import pytest
import websockets

from tests.integration.conftest import LiveServer
from tests.integration.realtime_client import CHUNK_MS
from voxdialog.audio.g711 import ulaw_encode
from voxdialog.audio.resample import resample

pytestmark = [pytest.mark.models, pytest.mark.slow]


async def synthesize(server: LiveServer, text: str) -> bytes:
    """24 kHz PCM of ``text`` from the server's own speech endpoint."""
    import httpx

    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        response = await http.post(
            "/v1/audio/speech",
            headers={"Authorization": f"Bearer {server.api_key}"},
            json={"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"},
        )
        response.raise_for_status()
        return response.content


async def run_turn(
    server: LiveServer, audio: bytes, *, session: dict[str, Any], bytes_per_chunk: int
) -> list[dict[str, Any]]:
    """Connect, configure, stream ``audio`` in real time, collect events to response.done."""
    events: list[dict[str, Any]] = []
    async with websockets.connect(
        f"{server.ws_url}/v1/realtime?model=local-voice",
        additional_headers={"Authorization": f"Bearer {server.api_key}"},
    ) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": session}))

        async def send() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for n, offset in enumerate(range(0, len(audio), bytes_per_chunk)):
                await ws.send(
                    json.dumps(
                        {
                            "type": "input_audio_buffer.append",
                            "audio": base64.b64encode(
                                audio[offset : offset + bytes_per_chunk]
                            ).decode(),
                        }
                    )
                )
                await asyncio.sleep(max(0.0, start + (n + 1) * CHUNK_MS / 1000 - loop.time()))

        sender = asyncio.create_task(send())
        async with asyncio.timeout(150):
            async for raw in ws:
                event = json.loads(raw)
                events.append(event)
                if event["type"] == "response.done":
                    break
        await sender
    return events


async def garbage(server: LiveServer, stop: asyncio.Event) -> int:
    """Send malformed events until told to stop (or closed for flooding); how many errors came
    back."""
    errors = 0
    async with websockets.connect(
        f"{server.ws_url}/v1/realtime?model=local-voice",
        additional_headers={"Authorization": f"Bearer {server.api_key}"},
    ) as ws:
        await ws.recv()
        junk = [
            b"\x00\xff binary",
            "{not json",
            json.dumps({"type": 42}),
            json.dumps({"type": "input_audio_buffer.append", "audio": "!!!"}),
            json.dumps(
                {
                    "type": "input_audio_buffer.append",
                    "audio": base64.b64encode(os.urandom(4801)).decode(),
                }
            ),
            json.dumps({"type": "response.cancel"}),
        ]
        n = 0
        closed_with: int | None = None
        try:
            while not stop.is_set():
                await ws.send(junk[n % len(junk)])
                n += 1
                raw = await asyncio.wait_for(ws.recv(), 10) if n % len(junk) != 5 else None
                if raw is not None and json.loads(raw)["type"] == "error":
                    errors += 1
                await asyncio.sleep(0.02)
        except websockets.ConnectionClosed as e:
            closed_with = e.rcvd.code if e.rcvd is not None else -1
        # Past its budget of control events the flooder is closed (R12), not the others.
        assert closed_with in (None, 1008)
    return errors


async def test_ten_concurrent_sessions_complete_while_another_sends_garbage(
    live_server: LiveServer,
) -> None:
    spoken = await synthesize(live_server, "Add a task to feed the cat.")
    pcm = b"\x00\x00" * 24 * 300 + spoken + b"\x00\x00" * 24 * 1500
    session = {
        "type": "realtime",
        "audio": {
            "input": {
                "transcription": {"model": "whisper-1"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
            }
        },
    }
    stop = asyncio.Event()
    noisy = asyncio.create_task(garbage(live_server, stop))
    results = await asyncio.gather(
        *(
            run_turn(live_server, pcm, session=session, bytes_per_chunk=48 * CHUNK_MS)
            for _ in range(10)
        )
    )
    stop.set()
    errors = await noisy
    assert errors > 10
    for events in results:
        types = [e["type"] for e in events]
        assert "error" not in types
        assert events[-1]["response"]["status"] == "completed"
        heard = next(
            e
            for e in events
            if e["type"] == "conversation.item.input_audio_transcription.completed"
        )
        assert "cat" in heard["transcript"].lower()
        assert any(t == "response.output_audio.delta" for t in types)


async def test_g711_ulaw_in_and_out(live_server: LiveServer) -> None:
    spoken = await synthesize(live_server, "What are my tasks?")
    ulaw = ulaw_encode(
        resample(b"\x00\x00" * 24 * 300 + spoken + b"\x00\x00" * 24 * 1500, 24_000, 8_000)
    )
    session = {
        "type": "realtime",
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}, "transcription": {"model": "whisper-1"}},
            "output": {"format": {"type": "audio/pcmu"}},
        },
    }
    events = await run_turn(live_server, ulaw, session=session, bytes_per_chunk=8 * CHUNK_MS)
    updated = next(e for e in events if e["type"] == "session.updated")
    assert updated["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    heard = next(
        e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
    )
    assert "task" in heard["transcript"].lower()
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    assert len(audio) > 8_000 * 0.5  # μ-law: 8000 bytes a second
    assert events[-1]["response"]["status"] == "completed"
