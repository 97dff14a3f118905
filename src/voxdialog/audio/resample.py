"""Sample-rate conversion of mono PCM16 with libsoxr, one-shot or streamed per session."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from voxdialog.audio import polyphase

# "HQ" is libsoxr's 20-bit quality: far beyond what speech or G.711 can show, and about
# half the cost of the "VHQ" default, which matters at one stream per live session.
QUALITY = "HQ"

_EMPTY = np.zeros(0, dtype=np.float32)


# libsoxr dithers integer output with a seed drawn from the clock and an address, so the same
# input would give different bytes run to run; we resample in float32 (exact for int16) and round.
def _to_float(pcm: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32)


def _to_pcm(samples: npt.NDArray[np.float32]) -> bytes:
    return np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()


def _check_rates(from_rate: int, to_rate: int) -> None:
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError("sample rates must be positive")


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Convert a whole clip of mono PCM16 from one rate to another.

    Args:
        pcm: Signed 16-bit little-endian samples; the length must be even.
        from_rate: The rate of ``pcm`` in Hz.
        to_rate: The wanted rate in Hz.

    Returns:
        PCM16 at ``to_rate``, about ``len(pcm) * to_rate / from_rate`` bytes; the input
        itself when the rates are equal.

    Raises:
        ValueError: A rate is not positive, or ``pcm`` has an odd number of bytes.
    """
    _check_rates(from_rate, to_rate)
    if len(pcm) % 2:
        raise ValueError("PCM16 input must have an even number of bytes")
    if from_rate == to_rate or not pcm:
        return pcm
    return _to_pcm(soxr.resample(_to_float(pcm), from_rate, to_rate, quality=QUALITY))


class Resampler:
    """Streaming converter for one session's audio; keeps the filter state between calls.

    Chunks may have any byte length: an odd trailing byte is held until the next call.
    ``flush`` emits the filter's tail and readies the object for a new stream.
    """

    def __init__(self, from_rate: int, to_rate: int, *, live: bool = False) -> None:
        """Create the converter.

        Args:
            from_rate: The rate of the input in Hz.
            to_rate: The rate of the output in Hz.
            live: A session's microphone, converted every 20 ms on the event loop: for a small
                ratio (24 kHz or 8 kHz to 16 kHz) a filter that keeps the GIL is used
                (``audio/polyphase.py`` says why), libsoxr otherwise.

        Raises:
            ValueError: A rate is not positive.
        """
        _check_rates(from_rate, to_rate)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._live = live and polyphase.supports(from_rate, to_rate)
        self._carry = b""
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream | polyphase.PolyphaseStream | None:
        if self.from_rate == self.to_rate:
            return None
        if self._live:
            return polyphase.PolyphaseStream(self.from_rate, self.to_rate)
        return soxr.ResampleStream(
            self.from_rate, self.to_rate, 1, dtype="float32", quality=QUALITY
        )

    def process(self, pcm: bytes) -> bytes:
        """Convert the next piece of the stream.

        Args:
            pcm: PCM16 little-endian bytes at ``from_rate``, of any length.

        Returns:
            The PCM16 output that is ready; the filter delays a few milliseconds of it.
        """
        if self._carry:
            pcm = self._carry + pcm
        whole = len(pcm) & ~1
        self._carry = pcm[whole:]
        if self._stream is None:
            return pcm[:whole]
        if not whole:
            return b""
        samples = _to_float(pcm[:whole])
        if isinstance(self._stream, polyphase.PolyphaseStream):
            return _to_pcm(self._stream.process(samples))
        return _to_pcm(self._stream.resample_chunk(samples))

    def flush(self) -> bytes:
        """End the stream: return the delayed tail and reset for the next one.

        A dangling odd byte is dropped, as it is half a sample.
        """
        self._carry = b""
        if self._stream is None:
            return b""
        if isinstance(self._stream, polyphase.PolyphaseStream):
            return _to_pcm(self._stream.flush())  # ready for the next stream
        out = self._stream.resample_chunk(_EMPTY, last=True)
        self._stream = self._new_stream()  # about 70 µs
        return _to_pcm(out)
