"""FLAC from ``POST /v1/audio/speech`` states its length in STREAMINFO, as libsndfile needs."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import LiveServer
from tests.unit.audio.test_audio_flac_header import decoded_samples, stream_info

pytestmark = [pytest.mark.models]


async def test_speech_as_flac_has_a_filled_in_streaminfo(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        response = await http.post(
            "/v1/audio/speech",
            headers={"Authorization": f"Bearer {live_server.api_key}"},
            json={
                "model": "tts-1",
                "voice": "alloy",
                "input": "Your task list is empty. Nothing is due today.",
                "response_format": "flac",
            },
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/flac"
    info = stream_info(response.content)
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (24_000, 1, 16)
    assert info.total_samples == decoded_samples(response.content) > 24_000 // 2
    assert 0 < info.min_frame <= info.max_frame
