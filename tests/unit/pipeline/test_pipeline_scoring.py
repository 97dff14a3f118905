"""Frame scoring off the loop: every session's frames, batched, in order, errors kept apart."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from voxdialog.pipeline.scoring import SILENCE_RMS, InlineScorer, ThreadedScorer, probabilities
from voxdialog.providers.base import BatchedVADStream
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


class CountingBatch:
    """A batching model: scores like the fake, and counts its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score_streams(
        self, work: Sequence[tuple[BatchedVADStream, Sequence[bytes]]]
    ) -> list[list[float]]:
        self.calls.append(len(work))
        return [[s.speech_probability(f) for f in frames] for s, frames in work]  # type: ignore[attr-defined]


class BatchedFakeStream(FakeVADStream):
    def __init__(self, batch: CountingBatch) -> None:
        super().__init__(frame_samples=512, speech_rms=0.01)
        self._batch = batch

    @property
    def batch(self) -> CountingBatch:
        return self._batch


def noise(ms: int, *, dbfs: float, seed: int = 0) -> bytes:
    rms = 32768 * 10 ** (dbfs / 20)
    samples = np.random.default_rng(seed).normal(0.0, rms, ms * 16)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


async def test_streams_of_a_batching_model_are_scored_in_one_call() -> None:
    model = CountingBatch()
    streams = [BatchedFakeStream(model) for _ in range(20)]
    scorer = ThreadedScorer()
    pcm = tone(320)
    try:
        # Held back until all 20 are waiting: the worker takes them in one batch.
        await asyncio.sleep(0)
        results = await asyncio.gather(*(scorer.score(s, frames_of(pcm)) for s in streams))
    finally:
        await scorer.close()
    inline = await InlineScorer().score(FakeVAD().open_stream(16_000), frames_of(pcm))
    assert results == [inline] * 20
    assert sum(model.calls) == 20
    assert len(model.calls) <= 2  # the first request may start the worker alone


async def test_quiet_frames_of_a_batching_model_skip_it_and_score_zero() -> None:
    model = CountingBatch()
    stream = BatchedFakeStream(model)
    scorer = ThreadedScorer()
    try:
        quiet = await scorer.score(stream, frames_of(noise(320, dbfs=-62)))
        loud = await scorer.score(stream, frames_of(tone(64)))
    finally:
        await scorer.close()
    assert quiet == [0.0] * 10
    assert model.calls == [1]  # only the tone reached the model
    assert all(p > 0.99 for p in loud)
    assert len(loud) == 2


def test_the_silence_gate_passes_quiet_speech_levels() -> None:
    # -55 dBFS is the gate; speech 10 dB above it reaches the model.
    stream = FakeVAD().open_stream(16_000)
    probabilities(stream, frames_of(noise(64, dbfs=-45)))
    assert stream.frames == 2
    assert 55 < SILENCE_RMS < 60
