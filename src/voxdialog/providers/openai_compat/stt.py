"""OpenAICompatSTT: transcription through ``POST {base}/audio/transcriptions``."""

from __future__ import annotations

import json
from typing import Any

from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.wav import write_wav
from voxdialog.providers.base import (
    ProviderError,
    ProviderInfo,
    STTPriority,
    Transcript,
    TranscriptSegment,
    TranscriptWord,
)
from voxdialog.providers.http import ProviderClient, bearer_headers
from voxdialog.providers.openai_compat.presets import resolve_base_url
from voxdialog.settings import ProviderSettings


def _float(value: object, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) else default


def _words(data: object) -> list[TranscriptWord]:
    words = data if isinstance(data, list) else []
    return [
        TranscriptWord(
            start=_float(w.get("start")),
            end=_float(w.get("end")),
            word=str(w.get("word", "")),
            probability=_float(w.get("probability"), 1.0),
        )
        for w in words
        if isinstance(w, dict)
    ]


def _segments(data: dict[str, Any]) -> tuple[TranscriptSegment, ...]:
    raw = data.get("segments")
    segments = [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []
    words = _words(data.get("words"))
    if words and not segments:
        start, end = words[0].start, words[-1].end
        return (TranscriptSegment(start, end, str(data.get("text", "")), words=tuple(words)),)
    out: list[TranscriptSegment] = []
    for i, seg in enumerate(segments):
        start, end = _float(seg.get("start")), _float(seg.get("end"))
        # OpenAI lists words beside the segments; each goes to the segment it starts in
        # (the last segment takes any stragglers).
        last = i == len(segments) - 1
        mine = tuple(w for w in words if start <= w.start and (w.start < end or last))
        out.append(
            TranscriptSegment(
                start=start,
                end=end,
                text=str(seg.get("text", "")),
                avg_logprob=_float(seg.get("avg_logprob")),
                no_speech_prob=_float(seg.get("no_speech_prob")),
                words=mine,
            )
        )
    return tuple(out)


def transcript_from_json(data: object, *, clip_s: float, language: str | None) -> Transcript:
    """A ``Transcript`` from a ``json`` or ``verbose_json`` transcription body.

    Args:
        data: The decoded body.
        clip_s: Length of the clip sent, used when the server does not say.
        language: The language asked for, used when the server does not say.

    Raises:
        ProviderError: The body has no ``text`` (not retryable: the server speaks
            another protocol).
    """
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ProviderError("transcription answer has no text", retryable=False)
    reported = data.get("language")
    return Transcript(
        text=data["text"].strip(),
        language=reported if isinstance(reported, str) and reported else language,
        duration_s=_float(data.get("duration"), clip_s),
        segments=_segments(data),
    )


class OpenAICompatSTT:
    """Speech to text on an OpenAI-compatible server (OpenAI, Groq, speaches, ...).

    Args:
        settings: Kind, model, key, timeouts; ``timeout_s`` limits the whole request.
        name: The provider name.
    """

    def __init__(self, settings: ProviderSettings, *, name: str) -> None:
        self.info = ProviderInfo(name=name, model=settings.model)
        self._model = settings.model
        self._http = ProviderClient(
            settings,
            name=name,
            base_url=resolve_base_url(settings),
            headers=bearer_headers(settings),
        )

    async def transcribe(
        self,
        clip: AudioChunk,
        *,
        language: str | None = None,
        prompt: str | None = None,
        word_timestamps: bool = False,
        priority: STTPriority = STTPriority.LIVE,
    ) -> Transcript:
        """Send ``clip`` as a WAV file and return what the server heard (``priority``: the
        remote server schedules its own work).

        Raises:
            ProviderTimeout: No whole answer within ``timeout_s``.
            ProviderError: HTTP error status, transport failure or an unreadable answer.
        """
        form: dict[str, str | list[str]] = {
            "model": self._model,
            "response_format": "verbose_json" if word_timestamps else "json",
        }
        if word_timestamps:
            form["timestamp_granularities[]"] = ["word", "segment"]
        if language:
            form["language"] = language
        if prompt:
            form["prompt"] = prompt
        files = {"file": ("audio.wav", write_wav(clip), "audio/wav")}
        response = await self._http.post(
            "audio/transcriptions", data=form, files=files, awaited="transcript"
        )
        clip_s = clip.duration_ms / 1000.0
        if not response.headers.get("content-type", "").startswith("application/json"):
            # Some servers answer plain text whatever was asked for.
            return Transcript(text=response.text.strip(), language=language, duration_s=clip_s)
        try:
            data = json.loads(response.content)
        except ValueError as e:
            raise ProviderError(
                f"{self.info.name}: unreadable transcription answer", retryable=True
            ) from e
        try:
            return transcript_from_json(data, clip_s=clip_s, language=language)
        except ProviderError as e:
            raise ProviderError(f"{self.info.name}: {e}", retryable=False) from e

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()
