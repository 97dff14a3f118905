"""The audio REST endpoints through the official openai SDK (and raw httpx for errors)."""

from __future__ import annotations

import io
import wave

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import SpeechClip
from tests.integration.conftest import LiveServer
from tests.unit.audio.test_audio_flac_header import decoded_samples, stream_info
from voxdialog.audio.codecs import decode_file
from voxdialog.testing.wer import word_error_rate

pytestmark = [pytest.mark.models]

CLIP = "librispeech_test_clean/1089-134691-0001.wav"


def client(server: LiveServer) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=server.api_key, base_url=f"{server.base_url}/v1", max_retries=0)


async def test_transcriptions_in_every_response_format(
    live_server: LiveServer, speech_manifest: dict[str, SpeechClip]
) -> None:
    clip = speech_manifest[CLIP]
    async with client(live_server) as api:
        as_json = await api.audio.transcriptions.create(
            model="whisper-1", file=(clip.path.name, clip.path.read_bytes(), "audio/wav")
        )
        text = await api.audio.transcriptions.create(
            model="whisper-1",
            file=(clip.path.name, clip.path.read_bytes(), "audio/wav"),
            response_format="text",
        )
        srt = await api.audio.transcriptions.create(
            model="whisper-1",
            file=(clip.path.name, clip.path.read_bytes(), "audio/wav"),
            response_format="srt",
        )
        vtt = await api.audio.transcriptions.create(
            model="whisper-1",
            file=(clip.path.name, clip.path.read_bytes(), "audio/wav"),
            response_format="vtt",
        )
        verbose = await api.audio.transcriptions.create(
            model="whisper-1",
            file=(clip.path.name, clip.path.read_bytes(), "audio/wav"),
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert word_error_rate(clip.transcript, as_json.text) <= 0.3
    assert str(text).strip() == as_json.text
    assert str(srt).startswith("1\n00:00:0")
    assert str(vtt).startswith("WEBVTT")
    assert verbose.segments
    assert verbose.words
    assert abs(verbose.duration - clip.duration_s) < 0.2
    assert verbose.words[0].start <= verbose.words[-1].end


async def test_transcription_streams_as_server_sent_events(
    live_server: LiveServer, speech_manifest: dict[str, SpeechClip]
) -> None:
    async with client(live_server) as api:
        stream = await api.audio.transcriptions.create(
            model="gpt-4o-mini-transcribe",
            file=("clip.wav", speech_manifest[CLIP].path.read_bytes(), "audio/wav"),
            stream=True,
        )
        events = [event async for event in stream]
    assert events[-1].type == "transcript.text.done"
    assert "longer" in events[-1].text.lower()


@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3", "opus", "flac", "aac"])
async def test_speech_in_each_format_decodes_back_to_audio(
    live_server: LiveServer, fmt: str
) -> None:
    async with client(live_server) as api:
        response = await api.audio.speech.create(
            model="tts-1", voice="alloy", input="Your task list is empty.", response_format=fmt
        )  # type: ignore[arg-type]
    data = response.content
    if fmt == "pcm":
        seconds = len(data) / 2 / 24_000
    else:
        seconds = decode_file(data, max_bytes=10**8, max_seconds=60).duration_ms / 1000
    assert 0.8 < seconds < 4.0


async def test_speech_round_trips_through_transcription(live_server: LiveServer) -> None:
    sentence = "Please call the dentist on Friday morning."
    async with client(live_server) as api:
        audio = await api.audio.speech.create(
            model="tts-1", voice="alloy", input=sentence, response_format="wav"
        )
        heard = await api.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", audio.content, "audio/wav")
        )
    assert word_error_rate(sentence, heard.text) <= 0.2


async def test_speech_streams_as_sse(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        response = await http.post(
            "/v1/audio/speech",
            headers={"Authorization": f"Bearer {live_server.api_key}"},
            json={
                "model": "tts-1",
                "voice": "alloy",
                "input": "Hello there.",
                "response_format": "pcm",
                "stream_format": "sse",
            },
        )
    lines = [ln for ln in response.text.splitlines() if ln.startswith("data: ")]
    assert '"speech.audio.delta"' in lines[0]
    assert '"speech.audio.done"' in lines[-1]


async def test_models_are_listed_and_unknown_ones_are_404(live_server: LiveServer) -> None:
    async with client(live_server) as api:
        models = [m.id async for m in api.models.list()]
        assert "local-voice" in models
        assert "whisper-1" in models
        assert "tts-1" in models
        with pytest.raises(openai.NotFoundError) as missing:
            await api.models.retrieve("no-such-model")
    assert missing.value.code == "model_not_found"


async def test_errors_use_the_openai_shape(live_server: LiveServer) -> None:
    wrong = AsyncOpenAI(api_key="wrong", base_url=f"{live_server.base_url}/v1", max_retries=0)
    async with wrong:
        with pytest.raises(openai.AuthenticationError) as denied:
            await wrong.models.list()
    assert denied.value.code == "invalid_api_key"
    async with client(live_server) as api:
        with pytest.raises(openai.BadRequestError) as bad:
            await api.audio.transcriptions.create(
                model="whisper-1", file=("notes.wav", b"RIFF\x00\x00garbage", "audio/wav")
            )
        assert bad.value.code == "invalid_audio"
        with pytest.raises(openai.BadRequestError) as too_fast:
            await api.audio.speech.create(model="tts-1", voice="alloy", input="hi", speed=9)
        assert too_fast.value.param == "speed"
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        body = (await http.post("/v1/audio/speech", json={})).json()
    assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_an_oversized_upload_is_413(live_server: LiveServer) -> None:
    limit = live_server.settings.limits.max_upload_bytes
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\x00\x00" * (limit // 2 + 100))
    async with client(live_server) as api:
        with pytest.raises(openai.APIStatusError) as big:
            await api.audio.transcriptions.create(
                model="whisper-1", file=("big.wav", buffer.getvalue(), "audio/wav")
            )
    assert big.value.status_code == 413


async def test_the_local_api_key_file_is_private(live_server: LiveServer) -> None:
    key_file = live_server.data_dir / "local-api-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().startswith("vxd_")


async def test_the_page_gets_a_short_lived_token_only_from_this_machine(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        local = await http.post("/api/realtime-token")
        foreign = await http.post("/api/realtime-token", headers={"Origin": "https://evil.example"})
    assert local.status_code == 200
    assert local.json()["token"].count(".") == 2  # a signed single-use ticket (JWT)
    assert 0 < local.json()["expires_in"] <= 60
    assert foreign.status_code == 401


async def test_health_and_readiness(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok", "worker": 0}
        ready = (await http.get("/readyz")).json()
        page = await http.get("/")
    assert ready["status"] == "ready"
    assert ready["checks"]["database"] == "ok"
    assert ready["checks"]["cache"] == "memory"
    assert (ready["checks"]["stt"], ready["checks"]["tts"]) == ("whisper", "piper")
    assert ready["checks"]["llm"] == "built-in assistant"
    assert page.status_code == 200
    assert "<html" in page.text.lower()


# FLAC states its length in STREAMINFO, as libsndfile needs.
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
