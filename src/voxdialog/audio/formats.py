"""Audio value types shared by every stage: raw PCM16 chunks and the wire formats we speak."""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: The rate every input stage (VAD, turn detection, STT) works at.
PIPELINE_RATE = 16_000
SAMPLE_WIDTH = 2  # bytes per PCM16 sample


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Mono, signed 16-bit little-endian PCM at ``sample_rate``."""

    pcm: bytes
    sample_rate: int

    @property
    def samples(self) -> int:
        """Number of samples in the chunk."""
        return len(self.pcm) // SAMPLE_WIDTH

    @property
    def duration_ms(self) -> float:
        """Duration in milliseconds."""
        return self.samples * 1000.0 / self.sample_rate


class Encoding(enum.StrEnum):
    """Sample encodings a Realtime client may use."""

    PCM16 = "pcm16"
    ULAW = "g711_ulaw"
    ALAW = "g711_alaw"


@dataclass(frozen=True, slots=True)
class WireFormat:
    """An audio format on the wire: encoding plus sample rate (G.711 is always 8 kHz)."""

    encoding: Encoding
    sample_rate: int

    @property
    def bytes_per_ms(self) -> int:
        """Bytes one millisecond of audio takes in this format."""
        width = SAMPLE_WIDTH if self.encoding is Encoding.PCM16 else 1
        return self.sample_rate * width // 1000


PCM16_24K = WireFormat(Encoding.PCM16, 24_000)
ULAW_8K = WireFormat(Encoding.ULAW, 8_000)
ALAW_8K = WireFormat(Encoding.ALAW, 8_000)
