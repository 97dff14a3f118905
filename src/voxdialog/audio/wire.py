"""Realtime wire formats: naming them (GA and beta spellings) and converting to and from our PCM."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from voxdialog.audio.formats import (
    ALAW_8K,
    PCM16_24K,
    PIPELINE_RATE,
    ULAW_8K,
    AudioChunk,
    Encoding,
    WireFormat,
)
from voxdialog.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voxdialog.audio.resample import Resampler

_GA_TYPES: dict[str, WireFormat] = {
    "audio/pcm": PCM16_24K,
    "audio/pcmu": ULAW_8K,
    "audio/pcma": ALAW_8K,
}
_BETA_NAMES: dict[str, WireFormat] = {
    "pcm16": PCM16_24K,
    "g711_ulaw": ULAW_8K,
    "g711_alaw": ALAW_8K,
}
_DECODERS: dict[Encoding, Callable[[bytes], bytes]] = {
    Encoding.ULAW: ulaw_decode,
    Encoding.ALAW: alaw_decode,
}
_ENCODERS: dict[Encoding, Callable[[bytes], bytes]] = {
    Encoding.ULAW: ulaw_encode,
    Encoding.ALAW: alaw_encode,
}


def parse_ga_format(obj: Mapping[str, object]) -> WireFormat:
    """Read a GA audio format object such as ``{"type": "audio/pcm", "rate": 24000}``.

    Args:
        obj: The ``format`` object of a GA ``session.update``.

    Returns:
        The wire format it names.

    Raises:
        ValueError: The type is unknown or the rate is not the one the type allows
            (24000 for ``audio/pcm``, 8000 for G.711, which may also leave it out).
    """
    kind = obj.get("type")
    fmt = _GA_TYPES.get(kind) if isinstance(kind, str) else None
    if fmt is None:
        known = ", ".join(_GA_TYPES)
        raise ValueError(f"unsupported audio format type {kind!r}; expected one of: {known}")
    rate = obj.get("rate", fmt.sample_rate)
    # bool is an int subclass; `"rate": true` is a client bug, not 1 Hz.
    if isinstance(rate, bool) or rate != fmt.sample_rate:
        raise ValueError(f"{kind} audio must have rate {fmt.sample_rate}, got {rate!r}")
    return fmt


def format_to_ga(fmt: WireFormat) -> dict[str, object]:
    """Spell a wire format as a GA format object; PCM carries its rate, G.711 does not."""
    if fmt.encoding is Encoding.PCM16:
        return {"type": "audio/pcm", "rate": fmt.sample_rate}
    return {"type": "audio/pcmu" if fmt.encoding is Encoding.ULAW else "audio/pcma"}


def parse_beta_format(name: str) -> WireFormat:
    """Read a beta format name: ``"pcm16"``, ``"g711_ulaw"`` or ``"g711_alaw"``.

    Raises:
        ValueError: The name is not one of those.
    """
    fmt = _BETA_NAMES.get(name)
    if fmt is None:
        known = ", ".join(_BETA_NAMES)
        raise ValueError(f"unsupported audio format {name!r}; expected one of: {known}")
    return fmt


def format_to_beta(fmt: WireFormat) -> str:
    """Spell a wire format as a beta format name."""
    return fmt.encoding.value


def ms_to_bytes(fmt: WireFormat, ms: float) -> int:
    """Bytes that ``ms`` milliseconds of audio take in ``fmt``, rounded down to whole samples."""
    width = 2 if fmt.encoding is Encoding.PCM16 else 1
    return int(ms * fmt.sample_rate / 1000) * width


def bytes_to_ms(fmt: WireFormat, size: int) -> float:
    """Milliseconds of audio that ``size`` bytes hold in ``fmt``."""
    width = 2 if fmt.encoding is Encoding.PCM16 else 1
    return (size // width) * 1000.0 / fmt.sample_rate


class InputDecoder:
    """Turns one session's incoming wire audio into PCM16 at the pipeline rate.

    Appends may be split anywhere, even inside a PCM16 sample: the odd byte waits for the next.
    """

    def __init__(self, fmt: WireFormat, *, target_rate: int = PIPELINE_RATE) -> None:
        """Create the decoder.

        Args:
            fmt: The format the client sends.
            target_rate: The rate the pipeline wants.
        """
        self.fmt = fmt
        self.target_rate = target_rate
        self._expand = _DECODERS.get(fmt.encoding)
        self._resampler = Resampler(fmt.sample_rate, target_rate, live=True)

    def decode(self, data: bytes) -> bytes:
        """Convert the next piece of client audio.

        Args:
            data: Raw bytes as they arrived (base64 already removed).

        Returns:
            PCM16 at ``target_rate``; the resampler holds back a few milliseconds.
        """
        pcm = self._expand(data) if self._expand is not None else data
        return self._resampler.process(pcm)

    def flush(self) -> bytes:
        """Return the audio the resampler still holds, e.g. when the buffer is committed."""
        return self._resampler.flush()


class OutputEncoder:
    """Turns one reply's TTS audio into the client's wire format."""

    def __init__(self, fmt: WireFormat, *, source_rate: int) -> None:
        """Create the encoder.

        Args:
            fmt: The format the client wants.
            source_rate: The rate of the TTS audio, e.g. 22050 for Piper.
        """
        self.fmt = fmt
        self.source_rate = source_rate
        self._compand = _ENCODERS.get(fmt.encoding)
        self._resampler = Resampler(source_rate, fmt.sample_rate)

    def encode(self, chunk: AudioChunk) -> bytes:
        """Convert the next chunk of TTS audio.

        Args:
            chunk: PCM16 at ``source_rate``.

        Returns:
            Bytes in the wire format, ready to base64 and send; possibly empty.

        Raises:
            ValueError: The chunk is not at ``source_rate``.
        """
        if chunk.sample_rate != self.source_rate:
            raise ValueError(
                f"chunk is at {chunk.sample_rate} Hz but this encoder takes {self.source_rate} Hz"
            )
        return self._finish(self._resampler.process(chunk.pcm))

    def flush(self) -> bytes:
        """End the reply: return the held-back tail, encoded, and reset for the next reply."""
        return self._finish(self._resampler.flush())

    def _finish(self, pcm: bytes) -> bytes:
        return self._compand(pcm) if self._compand is not None else pcm
