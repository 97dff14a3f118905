"""ManualBuffer: where the speech is in a push-to-talk clip, and its size cap."""

from __future__ import annotations

from voxdialog.pipeline.manual import ManualBuffer
from voxdialog.testing.fakes import FakeVAD
from voxdialog.testing.signals import silence, tone

BYTES_PER_MS = 32


def buffer(max_ms: int = 60_000) -> ManualBuffer:
    return ManualBuffer(FakeVAD().open_stream(16_000), bytes_per_ms=BYTES_PER_MS, max_ms=max_ms)


def test_the_speech_comes_with_its_padding_and_the_whole_clip_stays() -> None:
    manual = buffer()
    for piece in (silence(3000), tone(600), silence(500), tone(400), silence(3000)):
        manual.append(piece, threshold=0.5)
    clip, speech = manual.take(pad_before_ms=300, pad_after_ms=300)
    assert len(clip) == 7500 * BYTES_PER_MS
    # From 300 ms before the first tone to about 300 ms after the second (whole VAD frames).
    assert 2100 <= len(speech) / BYTES_PER_MS <= 2200
    assert len(manual) == 0


def test_audio_past_the_cap_is_dropped_from_the_front_and_the_speech_span_follows() -> None:
    manual = buffer(max_ms=2000)
    manual.append(silence(500) + tone(500), threshold=0.5)
    dropped = manual.append(silence(1500), threshold=0.5)
    assert dropped == 500 * BYTES_PER_MS
    clip, speech = manual.take(pad_before_ms=0, pad_after_ms=0)
    assert len(clip) == 2000 * BYTES_PER_MS
    assert 480 <= len(speech) / BYTES_PER_MS <= 560  # whole 32 ms VAD frames
    assert clip.startswith(speech)


def test_silence_alone_is_handed_over_whole() -> None:
    manual = buffer()
    manual.append(silence(1000), threshold=0.5)
    clip, speech = manual.take(pad_before_ms=300, pad_after_ms=300)
    assert speech == clip
