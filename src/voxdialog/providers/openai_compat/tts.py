"""OpenAICompatTTS: streamed speech from ``POST {base}/audio/speech`` as raw 24 kHz PCM."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Mapping

import httpx
import numpy as np

from voxdialog.audio.formats import SAMPLE_WIDTH, AudioChunk
from voxdialog.providers.base import ProviderError, ProviderInfo, VoiceSettings
from voxdialog.providers.http import ProviderClient, bearer_headers
from voxdialog.providers.openai_compat.presets import resolve_base_url
from voxdialog.settings import ProviderSettings

#: OpenAI's ``response_format: "pcm"``: 24 kHz, mono, signed 16-bit little-endian.
PCM_RATE = 24_000
_MAX_WAV_HEADER = 64 * 1024
_MIN_SPEED, _MAX_SPEED = 0.25, 4.0


class PcmChunker:
    """Cuts a stream of PCM16 bytes into ``AudioChunk``s as it arrives.

    A piece goes out once ``min_ms`` of audio is in hand, and none is longer than ``max_ms``;
    an odd byte waits for its partner. A stream that starts with a WAV header (a server that
    ignored ``pcm``) has the header read and dropped, and its sample rate wins.

    Args:
        sample_rate: The rate of headerless PCM.
        min_ms: Smallest piece sent before the end.
        max_ms: Largest piece.
        volume: Gain applied to every sample (1.0 = unchanged; clipped at full scale).
    """

    def __init__(
        self,
        sample_rate: int = PCM_RATE,
        *,
        min_ms: float = 20.0,
        max_ms: float = 100.0,
        volume: float = 1.0,
    ) -> None:
        self.sample_rate = sample_rate
        self._min_ms = min_ms
        self._max_ms = max_ms
        self._volume = volume
        self._buffer = bytearray()
        self._header_done = False

    def _bytes(self, ms: float) -> int:
        return max(SAMPLE_WIDTH, round(self.sample_rate * ms / 1000) * SAMPLE_WIDTH)

    def feed(self, data: bytes) -> list[AudioChunk]:
        """Add bytes; return the pieces ready to play.

        Raises:
            ProviderError: The stream is a WAV that is not mono PCM16 (not retryable).
        """
        self._buffer += data
        if not self._header_done and not self._skip_header():
            return []
        out: list[AudioChunk] = []
        smallest, largest = self._bytes(self._min_ms), self._bytes(self._max_ms)
        while len(self._buffer) >= smallest:
            size = min(len(self._buffer) - len(self._buffer) % SAMPLE_WIDTH, largest)
            out.append(self._chunk(bytes(self._buffer[:size])))
            del self._buffer[:size]
        return out

    def flush(self) -> list[AudioChunk]:
        """The rest at the end of the stream (a stray odd byte is dropped)."""
        if not self._header_done:
            self._header_done = True  # a stream shorter than a header is plain PCM
        size = len(self._buffer) - len(self._buffer) % SAMPLE_WIDTH
        tail = bytes(self._buffer[:size])
        self._buffer.clear()
        return [self._chunk(tail)] if tail else []

    def _chunk(self, pcm: bytes) -> AudioChunk:
        if self._volume != 1.0:
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) * self._volume
            pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
        return AudioChunk(pcm, self.sample_rate)

    def _skip_header(self) -> bool:
        """Drop a WAV header at the start; False while more bytes are needed to decide."""
        buf = self._buffer
        if len(buf) < 12:
            if not b"RIFF".startswith(bytes(buf[:4])):
                self._header_done = True
            return self._header_done
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            self._header_done = True
            return True
        pos = 12
        while pos + 8 <= len(buf):
            chunk_id, size = struct.unpack_from("<4sI", buf, pos)
            if chunk_id == b"data":
                del buf[: pos + 8]
                self._header_done = True
                return True
            if pos + 8 + size > _MAX_WAV_HEADER:
                raise ProviderError("WAV header too large", retryable=False)
            if pos + 8 + size > len(buf):
                return False
            if chunk_id == b"fmt ":
                tag, channels, rate = struct.unpack_from("<HHI", buf, pos + 8)
                bits = struct.unpack_from("<H", buf, pos + 22)[0] if size >= 16 else 0
                if tag not in (1, 0xFFFE) or channels != 1 or bits != 16:
                    raise ProviderError("speech is not mono 16-bit PCM", retryable=False)
                self.sample_rate = rate
            pos += 8 + size + size % 2
        return False


async def stream_audio(
    http: ProviderClient,
    path: str,
    chunker: PcmChunker,
    *,
    json: object,
    params: Mapping[str, str] | None = None,
) -> AsyncIterator[AudioChunk]:
    """POST ``json`` to ``path`` and stream the PCM body as chunks.

    The first body bytes must arrive within the client's ``timeout_s``; after that each read
    gets as long. Closing the iteration closes the connection.

    Raises:
        ProviderTimeout: No audio in time.
        ProviderError: Error status or transport failure (also mid-stream).
    """
    parts = http.stream(path, _body_bytes, json=json, params=params, awaited="audio")
    async with contextlib.aclosing(parts):
        async for data in parts:
            for piece in chunker.feed(data):
                yield piece
    for piece in chunker.flush():
        yield piece


async def _body_bytes(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    async for data in response.aiter_bytes():
        yield data


class OpenAICompatTTS:
    """Text to speech on an OpenAI-compatible server (OpenAI, speaches, ...), streamed.

    Asks for ``response_format: "pcm"`` and yields 24 kHz chunks of up to 100 ms as they
    arrive. The voice is ``settings.voice`` if set, else the one the caller asks for.

    Args:
        settings: Kind, model, key, voice, timeouts.
        name: The provider name.
    """

    def __init__(self, settings: ProviderSettings, *, name: str) -> None:
        self.info = ProviderInfo(
            name=name, model=settings.model, streaming=True, sample_rate=PCM_RATE
        )
        self._model = settings.model
        self._voice = settings.voice
        self._http = ProviderClient(
            settings,
            name=name,
            base_url=resolve_base_url(settings),
            headers=bearer_headers(settings),
        )

    async def synthesize(self, text: str, *, voice: VoiceSettings) -> AsyncIterator[AudioChunk]:
        """Stream speech for ``text``; cancel the iteration to stop (closes the request).

        Raises:
            ProviderTimeout: No audio within ``timeout_s``.
            ProviderError: HTTP error status or transport failure.
        """
        if not text.strip():
            return  # servers reject empty input; there is nothing to say anyway
        payload = {
            "model": self._model,
            "input": text,
            "voice": self._voice or voice.voice,
            "response_format": "pcm",
            "speed": min(_MAX_SPEED, max(_MIN_SPEED, voice.speed)),
        }
        chunker = PcmChunker(PCM_RATE, volume=voice.volume)
        async for piece in stream_audio(self._http, "audio/speech", chunker, json=payload):
            yield piece

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()
