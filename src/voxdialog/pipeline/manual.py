"""ManualBuffer: the input audio buffer when the client decides turns (push-to-talk).

The client commits whatever it appended, often with seconds of silence around the words (a
button held before speaking). Whisper tends to repeat or invent words over long silence, so
the buffer runs the session's VAD as audio arrives and offers the span with speech in it, with
some padding, for transcription. The committed item keeps the whole clip.
"""

from __future__ import annotations

from voxdialog.providers.base import VADStream


class ManualBuffer:
    """Appended PCM16 (pipeline rate) with where speech was heard in it.

    Args:
        vad: The session's VAD stream (it sees the audio in order, as it arrives).
        bytes_per_ms: PCM bytes per millisecond.
        max_ms: The most audio kept; older audio is dropped first.
    """

    def __init__(self, vad: VADStream, *, bytes_per_ms: int, max_ms: int) -> None:
        self._vad = vad
        self._bytes_per_ms = bytes_per_ms
        self._frame = vad.frame_samples * 2
        self._max_bytes = max_ms * bytes_per_ms
        self._audio = bytearray()
        self._scanned = 0  # bytes of _audio the VAD has seen (whole frames only)
        self._voiced: tuple[int, int] | None = None  # first voiced byte, end of last voiced

    def __len__(self) -> int:
        return len(self._audio)

    def append(self, pcm: bytes, *, threshold: float) -> int:
        """Add audio; returns how many bytes of the oldest audio were dropped to make room."""
        self._audio += pcm
        while len(self._audio) - self._scanned >= self._frame:
            frame = bytes(self._audio[self._scanned : self._scanned + self._frame])
            if self._vad.speech_probability(frame) >= threshold:
                start = self._voiced[0] if self._voiced else self._scanned
                self._voiced = (start, self._scanned + self._frame)
            self._scanned += self._frame
        overflow = len(self._audio) - self._max_bytes
        if overflow > 0:
            self._drop(overflow)
        return max(0, overflow)

    def take(self, *, pad_before_ms: int, pad_after_ms: int) -> tuple[bytes, bytes]:
        """Empty the buffer: (the whole clip, the part with speech and its padding).

        With no speech heard the second is the whole clip too (the STT has the last word).
        """
        clip = bytes(self._audio)
        speech = clip
        if self._voiced is not None:
            start = max(0, self._voiced[0] - pad_before_ms * self._bytes_per_ms)
            end = min(len(clip), self._voiced[1] + pad_after_ms * self._bytes_per_ms)
            speech = clip[start:end]
        self.clear()
        return clip, speech

    def clear(self) -> None:
        """Forget everything appended."""
        self._audio.clear()
        self._scanned = 0
        self._voiced = None

    def _drop(self, count: int) -> None:
        count -= count % 2
        del self._audio[:count]
        self._scanned = max(0, self._scanned - count)
        if self._voiced is not None:
            start, end = self._voiced[0] - count, self._voiced[1] - count
            self._voiced = (max(0, start), end) if end > 0 else None
