"""Long audio cut into pieces at its quietest moments, so a model slot is never held long.

A ten-minute upload transcribed in one call keeps the local model busy for minutes, and every
live turn waits behind it. Cut into pieces of at most ``max_s`` seconds, it gives the slot back
between pieces and the most urgent waiter goes first. Each cut falls on the quietest short
frame of the piece's last seconds, so words are rarely split.
"""

from __future__ import annotations

import numpy as np

from voxdialog.audio.formats import AudioChunk

#: Where a cut may fall: within this many seconds before the longest allowed piece ends.
_SEARCH_S = 5.0
#: The frame whose loudness decides a cut point.
_FRAME_S = 0.05


def split_at_pauses(clip: AudioChunk, max_s: float) -> list[tuple[float, AudioChunk]]:
    """``clip`` as pieces of at most ``max_s`` seconds, each with its start time in seconds.

    Raises:
        ValueError: ``max_s`` leaves no room to look for a pause.
    """
    if max_s <= _SEARCH_S:
        raise ValueError(f"pieces must be longer than {_SEARCH_S} s")
    rate = clip.sample_rate
    samples = np.frombuffer(clip.pcm, dtype="<i2")
    longest = int(max_s * rate)
    pieces: list[tuple[float, AudioChunk]] = []
    start = 0
    while len(samples) - start > longest:
        cut = _quietest_point(
            samples, start + longest - int(_SEARCH_S * rate), start + longest, rate
        )
        pieces.append((start / rate, _chunk(samples[start:cut], rate)))
        start = cut
    pieces.append((start / rate, _chunk(samples[start:], rate)))
    return pieces


def _quietest_point(samples: np.ndarray, begin: int, end: int, rate: int) -> int:
    """The middle of the quietest frame in ``samples[begin:end]``."""
    frame = max(1, int(_FRAME_S * rate))
    window = samples[begin:end].astype(np.float64)
    count = len(window) // frame
    energy = np.square(window[: count * frame]).reshape(count, frame).mean(axis=1)
    return begin + int(np.argmin(energy)) * frame + frame // 2


def _chunk(samples: np.ndarray, rate: int) -> AudioChunk:
    return AudioChunk(samples.astype("<i2").tobytes(), rate)
