"""ElevenLabsTTS: streamed speech from the ElevenLabs text-to-speech API as 24 kHz PCM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import ProviderInfo, VoiceSettings
from voxdialog.providers.http import ProviderClient
from voxdialog.providers.openai_compat.presets import resolve_base_url
from voxdialog.providers.openai_compat.tts import PCM_RATE, PcmChunker, stream_audio
from voxdialog.settings import ProviderSettings

DEFAULT_MODEL = "eleven_flash_v2_5"
#: "Rachel", one of the premade voices every account has; used when no voice id is given.
DEFAULT_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"
# ElevenLabs accepts speeds in this range only (a request outside it is a 400).
_MIN_SPEED, _MAX_SPEED = 0.7, 1.2


class ElevenLabsTTS:
    """Text to speech on ElevenLabs (``/v1/text-to-speech/{voice_id}/stream``).

    Asks for ``output_format=pcm_24000`` and yields chunks of up to 100 ms as they arrive.
    The voice id is ``settings.voice``, else the caller's voice name unless it is
    ``"default"``, else ``DEFAULT_VOICE_ID``; the model is ``settings.model`` or
    ``eleven_flash_v2_5``. The key goes in the ``xi-api-key`` header.

    Args:
        settings: Base URL (default ``https://api.elevenlabs.io``), model, key, voice, timeouts.
        name: The provider name.
    """

    def __init__(self, settings: ProviderSettings, *, name: str) -> None:
        self._model = settings.model or DEFAULT_MODEL
        self.info = ProviderInfo(name=name, model=self._model, streaming=True, sample_rate=PCM_RATE)
        self._voice = settings.voice
        headers = dict(settings.headers)
        key = settings.key()
        if key:
            headers["xi-api-key"] = key
        self._http = ProviderClient(
            settings, name=name, base_url=resolve_base_url(settings), headers=headers
        )

    def _voice_id(self, voice: VoiceSettings) -> str:
        if self._voice:
            return self._voice
        return voice.voice if voice.voice and voice.voice != "default" else DEFAULT_VOICE_ID

    async def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """Stream speech for ``text``; cancel the iteration to stop (closes the request).

        Raises:
            ProviderTimeout: No audio within ``timeout_s``.
            ProviderError: HTTP error status or transport failure.
        """
        if not text.strip():
            return
        payload = {
            "text": text,
            "model_id": self._model,
            "voice_settings": {"speed": min(_MAX_SPEED, max(_MIN_SPEED, voice.speed))},
        }
        path = f"v1/text-to-speech/{quote(self._voice_id(voice), safe='')}/stream"
        chunker = PcmChunker(PCM_RATE, volume=voice.volume)
        params = {"output_format": "pcm_24000"}
        async for piece in stream_audio(self._http, path, chunker, json=payload, params=params):
            yield piece

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()
