"""Every server event we send validates against the official SDK's GA event models."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pydantic
import pytest
import websockets
from openai.types.realtime import RealtimeServerEvent

from tests.integration.conftest import LiveServer
from tests.integration.test_realtime_concurrency import synthesize

pytestmark = [pytest.mark.models, pytest.mark.slow]

ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RealtimeServerEvent)


async def raw_events_of_a_voice_turn(server: LiveServer) -> list[dict[str, Any]]:
    spoken = await synthesize(server, "Add a task to renew my passport.")
    audio = b"\x00\x00" * 24 * 300 + spoken + b"\x00\x00" * 24 * 1200
    events: list[dict[str, Any]] = []
    async with websockets.connect(
        f"{server.ws_url}/v1/realtime?model=local-voice",
        additional_headers={"Authorization": f"Bearer {server.api_key}"},
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {"input": {"transcription": {"model": "whisper-1"}}},
                    },
                }
            )
        )
        for offset in range(0, len(audio), 9600):
            await ws.send(
                json.dumps(
                    {
                        "type": "input_audio_buffer.append",
                        "audio": base64.b64encode(audio[offset : offset + 9600]).decode(),
                    }
                )
            )
        await ws.send(json.dumps({"type": "response.cancel"}))  # an error event too
        async with asyncio.timeout(60):
            async for raw in ws:
                events.append(json.loads(raw))
                if events[-1]["type"] == "response.done":
                    break
        await ws.send(
            json.dumps(
                {
                    "type": "conversation.item.retrieve",
                    "item_id": events[-1]["response"]["output"][0]["id"],
                }
            )
        )
        events.append(json.loads(await ws.recv()))
    return events


async def test_every_event_of_a_turn_matches_the_sdk_models(live_server: LiveServer) -> None:
    events = await raw_events_of_a_voice_turn(live_server)
    kinds = {e["type"] for e in events}
    assert {
        "session.created",
        "session.updated",
        "input_audio_buffer.speech_started",
        "response.output_audio.delta",
        "response.done",
        "error",
        "conversation.item.retrieved",
    } <= kinds
    for event in events:
        parsed = ADAPTER.validate_python(event)
        assert parsed.type == event["type"]
        assert event["event_id"].startswith("event_")
    assert len({e["event_id"] for e in events}) == len(events)
