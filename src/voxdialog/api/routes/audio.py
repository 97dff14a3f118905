"""``POST /v1/audio/transcriptions`` and ``POST /v1/audio/speech`` (OpenAI compatible)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from voxdialog.api.deps import RuntimeDep, ScopeDep
from voxdialog.api.errors import ApiError
from voxdialog.api.subtitles import to_srt, to_vtt
from voxdialog.audio.codecs import CONTENT_TYPES, StreamEncoder, decode_file
from voxdialog.audio.errors import AudioError, AudioTooLarge, UnsupportedAudioFormat
from voxdialog.providers.base import ProviderError, STTPriority, Transcript, VoiceSettings

router = APIRouter(prefix="/v1/audio", tags=["audio"])

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


async def _read_upload(file: UploadFile, limit: int) -> bytes:
    # The request guard has already cut the body off at the limit (plus the form's fields);
    # this holds the file part itself to it.
    if file.size is not None and file.size > limit:
        raise _too_big(limit)
    data = bytearray()
    while chunk := await file.read(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise _too_big(limit)
    return bytes(data)


def _too_big(limit: int) -> ApiError:
    return ApiError(
        413, f"File is larger than the {limit} byte limit.", code="file_too_large", param="file"
    )


def _refusal(error: AudioError, limit: int) -> ApiError:
    """The answer for a file that cannot be transcribed (never a 5xx: the fault is the file)."""
    if isinstance(error, AudioTooLarge):
        if error.exceeded == "bytes":
            return _too_big(limit)
        return ApiError(
            413, f"Audio is over the limit: {error}", code="audio_too_long", param="file"
        )
    if isinstance(error, UnsupportedAudioFormat):
        return ApiError(
            415,
            f"Unsupported audio format: {error}. Send WAV (PCM, float, μ-law or A-law), MP3, "
            "FLAC, AIFF, Ogg (Opus, Vorbis), WebM, M4A/MP4 (AAC) or MPEG audio.",
            code="unsupported_audio_format",
            param="file",
        )
    return ApiError(
        400, f"Could not decode the audio file: {error}", code="invalid_audio", param="file"
    )


@router.post(
    "/transcriptions",
    response_model=None,
    responses={
        413: {"description": "File or audio over the upload limits"},
        415: {"description": "Audio format or codec not accepted"},
    },
)
async def transcriptions(
    runtime: RuntimeDep,
    scope: ScopeDep,
    file: Annotated[UploadFile, Form()],
    model: Annotated[str, Form(max_length=128)],
    language: Annotated[str | None, Form(max_length=16)] = None,
    prompt: Annotated[str | None, Form(max_length=4096)] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float | None, Form(ge=0, le=1)] = None,
    granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
    stream: Annotated[bool, Form()] = False,
) -> Response:
    """Transcribe an uploaded audio file."""
    stt = runtime.stt
    if stt is None:
        raise ApiError(503, "Speech recognition is not loaded yet.", code="not_ready")
    limits = runtime.settings.limits
    data = await _read_upload(file, limits.max_upload_bytes)
    try:
        clip = await asyncio.to_thread(
            decode_file,
            data,
            max_bytes=limits.max_upload_bytes,
            max_seconds=limits.max_upload_seconds,
        )
    except AudioError as e:
        raise _refusal(e, limits.max_upload_bytes) from e
    words = "word" in (granularities or [])
    try:
        # Uploads yield to live turns: a long file is transcribed in pieces, the turns first.
        transcript = await stt.transcribe(
            clip,
            language=language,
            prompt=prompt,
            word_timestamps=words,
            priority=STTPriority.UPLOAD,
        )
    except ProviderError as e:
        raise ApiError(
            502 if e.retryable else 500,
            "Transcription failed.",
            code="transcription_failed",
            type="server_error",
        ) from e
    if stream:
        return StreamingResponse(_transcript_events(transcript), media_type="text/event-stream")
    return _transcript_response(transcript, response_format, granularities or ["segment"])


async def _transcript_events(transcript: Transcript) -> AsyncIterator[bytes]:
    usage = {"type": "duration", "seconds": round(transcript.duration_s, 3)}
    pieces = [s.text for s in transcript.segments] or [transcript.text]
    for piece in pieces:
        if piece:
            yield _sse({"type": "transcript.text.delta", "delta": piece})
    yield _sse({"type": "transcript.text.done", "text": transcript.text, "usage": usage})


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _transcript_response(t: Transcript, fmt: str, granularities: list[str]) -> Response:
    if fmt == "text":
        return PlainTextResponse(t.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(to_srt(t))
    if fmt == "vtt":
        return PlainTextResponse(to_vtt(t), media_type="text/vtt")
    usage = {"type": "duration", "seconds": round(t.duration_s, 3)}
    if fmt == "json":
        return JSONResponse({"text": t.text, "usage": usage})
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": _language_name(t.language),
        "duration": round(t.duration_s, 3),
        "text": t.text,
        "usage": usage,
    }
    if "segment" in granularities:
        body["segments"] = [
            {
                "id": n,
                "seek": 0,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": 1.0,
                "no_speech_prob": s.no_speech_prob,
            }
            for n, s in enumerate(t.segments)
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for s in t.segments
            for w in s.words
        ]
    return JSONResponse(body)


def _language_name(code: str | None) -> str:
    return {"en": "english", None: "english"}.get(code, code or "english")


class SpeechRequest(BaseModel):
    """The body of ``/v1/audio/speech``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=128)
    input: str = Field(min_length=1)
    voice: str | dict[str, str] = "alloy"
    instructions: str | None = Field(None, max_length=4096)
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"

    @field_validator("input")
    @classmethod
    def _speakable(cls, text: str) -> str:
        # Lone surrogates cannot be encoded for the voice; NUL and other controls say nothing.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("input is not valid Unicode text") from exc
        cleaned = "".join(c for c in text if c.isprintable() or c in "\n\t")
        if not cleaned.strip():
            raise ValueError("input has nothing to speak")
        return cleaned


_SPEECH_CONTENT: dict[str, Any] = {
    media: {"schema": {"type": "string", "format": "binary"}}
    for media in dict.fromkeys(CONTENT_TYPES.values())
}
_SPEECH_CONTENT["text/event-stream"] = {
    "schema": {
        "type": "object",
        "properties": {"type": {"type": "string"}, "audio": {"type": "string"}},
    }
}


@router.post(
    "/speech",
    response_model=None,
    responses={200: {"description": "Audio, or SSE events", "content": _SPEECH_CONTENT}},
)
async def speech(
    body: SpeechRequest, runtime: RuntimeDep, scope: ScopeDep, request: Request
) -> Response:
    """Speak ``input``; the audio streams as it is synthesized."""
    tts = runtime.tts
    if tts is None:
        raise ApiError(503, "Speech synthesis is not loaded yet.", code="not_ready")
    if len(body.input) > runtime.settings.limits.max_speech_chars:
        raise ApiError(
            400,
            f"input is longer than {runtime.settings.limits.max_speech_chars} characters.",
            code="string_above_max_length",
            param="input",
        )
    voice_name = body.voice if isinstance(body.voice, str) else body.voice.get("id", "alloy")
    voice = VoiceSettings(voice=voice_name, speed=body.speed)
    stream = tts.synthesize(body.input, voice=voice)
    try:
        first = await anext(stream, None)
    except ProviderError as e:
        raise ApiError(
            500, "Speech synthesis failed.", code="tts_failed", type="server_error"
        ) from e
    if first is None:
        raise ApiError(400, "input has nothing to speak.", code="invalid_value", param="input")
    encoder = StreamEncoder(body.response_format, sample_rate=first.sample_rate)

    async def audio_bytes() -> AsyncIterator[bytes]:
        try:
            yield await asyncio.to_thread(encoder.encode, first)
            async for chunk in stream:
                yield await asyncio.to_thread(encoder.encode, chunk)
            yield await asyncio.to_thread(encoder.finish)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    if body.stream_format == "sse":
        return StreamingResponse(
            _speech_events(audio_bytes(), len(body.input)), media_type="text/event-stream"
        )
    return StreamingResponse(audio_bytes(), media_type=CONTENT_TYPES[body.response_format])


async def _speech_events(audio: AsyncIterator[bytes], chars: int) -> AsyncIterator[bytes]:
    async for piece in audio:
        if piece:
            yield _sse({"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode()})
    yield _sse(
        {
            "type": "speech.audio.done",
            "usage": {"input_tokens": chars, "output_tokens": 0, "total_tokens": chars},
        }
    )
