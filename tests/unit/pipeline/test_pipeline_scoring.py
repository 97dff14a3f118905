"""Frame scoring off the loop: every session's frames, batched, in order, errors kept apart."""

from __future__ import annotations

import asyncio
import threading

import pytest

from voxdialog.pipeline.scoring import InlineScorer, ThreadedScorer, probabilities
from voxdialog.testing.fakes import FakeVAD, FakeVADStream
from voxdialog.testing.signals import silence, tone

FRAME = 512 * 2


def frames_of(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]


class RecordingStream(FakeVADStream):
    """Notes which thread scored its frames."""

    def __init__(self) -> None:
        super().__init__(frame_samples=512, speech_rms=0.01)
        self.threads: set[int] = set()

    def speech_probability(self, frame: bytes) -> float:
        self.threads.add(threading.get_ident())
        return super().speech_probability(frame)


async def test_threaded_scores_match_inline_scores_and_run_off_the_loop() -> None:
    pcm = tone(320) + silence(160) + tone(320)
    streams = [RecordingStream() for _ in range(12)]
    scorer = ThreadedScorer()
    try:
        threaded = await asyncio.gather(*(scorer.score(s, frames_of(pcm)) for s in streams))
    finally:
        await scorer.close()
    inline = await InlineScorer().score(FakeVAD().open_stream(16_000), frames_of(pcm))
    assert threaded == [inline] * 12
    assert all(threading.get_ident() not in s.threads for s in streams)


def test_silent_frames_skip_the_model() -> None:
    stream = FakeVAD().open_stream(16_000)
    scores = probabilities(stream, frames_of(silence(320) + tone(64)))
    assert scores[:10] == [0.0] * 10
    assert stream.frames == 2  # only the tone's frames reached the model


async def test_one_streams_bad_frame_fails_only_that_stream() -> None:
    scorer = ThreadedScorer()
    good, bad = FakeVAD().open_stream(16_000), FakeVAD().open_stream(16_000)
    try:
        results = await asyncio.gather(
            scorer.score(good, frames_of(tone(64))),
            scorer.score(bad, [b"\x01\x02" * 7]),  # not a whole frame
            return_exceptions=True,
        )
    finally:
        await scorer.close()
    assert isinstance(results[0], list)
    assert isinstance(results[1], ValueError)


async def test_a_malformed_frame_is_refused_even_when_quiet() -> None:
    with pytest.raises(ValueError, match="frames"):
        await InlineScorer().score(FakeVAD().open_stream(16_000), [b"\x01\x00" * 3])
