"""/metrics after real voice turns: every per-stage histogram and the audio frame counters."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SpeechClip
from tests.integration.conftest import LiveServer
from tests.integration.realtime_client import collect_until, silence24, stream_pcm24, to_pcm24
from voxdialog.testing.signals import load_wav_pcm16

pytestmark = [pytest.mark.models, pytest.mark.slow]

CLIPS = (
    "librispeech_test_clean/1089-134691-0000.wav",
    "librispeech_test_clean/1089-134686-0001.wav",
    "ljspeech/LJ001-0002.wav",
)
STAGE_HISTOGRAMS = (
    "voxdialog_end_of_turn_detection_seconds",
    "voxdialog_stt_final_transcript_seconds",
    "voxdialog_brain_first_text_seconds",
    "voxdialog_tts_first_audio_seconds",
    "voxdialog_end_of_speech_to_first_audio_seconds",
)
VOICE_SESSION = {
    "type": "realtime",
    "output_modalities": ["audio"],
    "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}},
}


async def scrape(server: LiveServer) -> dict[str, float]:
    """Every unlabelled sample of ``/metrics`` (and labelled ones as ``name{k=v}``)."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        # The local admin's key: an operator may read the process-wide figures.
        auth = {"Authorization": f"Bearer {server.api_key}"}
        response = await http.get("/metrics", headers=auth)
    response.raise_for_status()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "le")
            if "le" not in s.labels:
                values[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return values


async def test_voice_turns_fill_every_stage_histogram_and_the_frame_counters(
    live_server: LiveServer, speech_manifest: dict[str, SpeechClip]
) -> None:
    before = await scrape(live_server)
    api = AsyncOpenAI(api_key=live_server.api_key, base_url=f"{live_server.base_url}/v1")
    async with api, api.realtime.connect(model="local-voice") as conn:
        await conn.session.update(session=VOICE_SESSION)
        for clip in CLIPS:
            pcm = to_pcm24(load_wav_pcm16(speech_manifest[clip].path).pcm)
            sender = asyncio.create_task(
                stream_pcm24(conn, silence24(300) + pcm + silence24(1500), speed=2.0)
            )
            events = await collect_until(conn, {"response.done"}, timeout=90)
            await sender
            assert events[-1].response.status == "completed"
        await conn.send_raw(json.dumps({"type": "input_audio_buffer.append", "audio": "%%%"}))
        await collect_until(conn, {"error"}, timeout=30)
    after = await scrape(live_server)

    def grew(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    for histogram in STAGE_HISTOGRAMS:
        assert f"{histogram}_count" in after, histogram
        assert grew(f"{histogram}_count") >= len(CLIPS), histogram
    assert grew("voxdialog_audio_frames_in_total") > 0
    assert grew("voxdialog_audio_frames_out_total") > 0
    assert grew("voxdialog_audio_frames_dropped_total{reason=invalid_audio}") == 1
    for reason in ("buffer_full", "client_gone"):
        assert f"voxdialog_audio_frames_dropped_total{{reason={reason}}}" in after
    assert "voxdialog_event_loop_lag_seconds_count" in after
