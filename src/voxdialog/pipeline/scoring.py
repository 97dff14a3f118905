"""Frame scoring: the VAD's speech probability for each frame, off the event loop.

Silero costs about 0.1 ms of CPU per 32 ms frame alone. Run inline on the event loop for
every frame of every session, it takes much of a core at 150 sessions and delays every
session's audio. ``ThreadedScorer`` (one per process) takes the frames of all sessions that
arrive while it is busy and scores them in one worker-thread call (onnxruntime releases the
GIL), so the loop only hands frames over; streams of a batching model (``BatchedVADStream``)
are stepped together, one model call per frame position for all of them. Both scorers skip
the model for frames quieter than a silent room (``SILENCE_RMS``): quiet costs almost nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from voxdialog.providers.base import BatchedVADStream, VADBatch, VADStream

#: Frames whose RMS is below this are scored 0 unseen: -55 dBFS (PCM16 units), the hiss of a
#: quiet room or an idle microphone. Speech that quiet is 25-35 dB under conversational level
#: (about -25 dBFS), where Silero itself scores near 0.
SILENCE_RMS = 32768.0 * 10 ** (-55 / 20)
_SILENCE_ENERGY = SILENCE_RMS * SILENCE_RMS


class FrameScorer(Protocol):
    """Scores frames of one stream, in order."""

    async def score(self, stream: VADStream, frames: Sequence[bytes]) -> list[float]:
        """The speech probability of each frame (the stream's state advances through them)."""
        ...


def probabilities(stream: VADStream, frames: Sequence[bytes]) -> list[float]:
    """Score ``frames`` in order (blocking); near-silent frames skip the model."""
    size = stream.frame_samples * 2
    return [
        0.0 if len(frame) == size and _silent(frame) else stream.speech_probability(frame)
        for frame in frames
    ]


def _silent(frame: bytes) -> bool:
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
    return float(np.dot(samples, samples)) < _SILENCE_ENERGY * len(samples)


class InlineScorer:
    """Scores on the calling thread: for one-off turns and tests."""

    async def score(self, stream: VADStream, frames: Sequence[bytes]) -> list[float]:
        """See ``FrameScorer``."""
        return probabilities(stream, frames)


_Request = tuple[VADStream, Sequence[bytes], "asyncio.Future[list[float]]"]


class ThreadedScorer:
    """Scores every session's frames in a worker thread, a batch of sessions per call.

    Frames that arrive while a batch is being scored wait for the next one: under load the
    batches grow, and the loop pays one thread hand-over per batch, not per frame. Bound to the
    event loop it is first used on; ``close()`` ends its worker.
    """

    def __init__(self) -> None:
        self._pending: list[_Request] = []
        self._worker: asyncio.Task[None] | None = None

    async def score(self, stream: VADStream, frames: Sequence[bytes]) -> list[float]:
        """See ``FrameScorer``."""
        if not frames:
            return []
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._pending.append((stream, frames, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Stop the worker; frames still waiting are not scored."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for _, _, future in self._pending:
            future.cancel()
        self._pending.clear()

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await asyncio.to_thread(_score_batch, batch)
            except asyncio.CancelledError:
                for _, _, future in batch:
                    future.cancel()
                raise
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue  # its session was closed meanwhile
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


def _score_batch(batch: list[_Request]) -> list[list[float] | BaseException]:
    # One session's bad frame must not fail the others': its error goes to it alone.
    results: list[list[float] | BaseException] = []
    together: dict[int, tuple[VADBatch, list[tuple[int, BatchedVADStream, list[int]]]]] = {}
    for stream, frames, _ in batch:
        if not isinstance(stream, BatchedVADStream) or not _whole(stream, frames):
            try:
                results.append(probabilities(stream, frames))
            except Exception as e:
                results.append(e)
            continue
        heard = [i for i, frame in enumerate(frames) if not _silent(frame)]
        model = stream.batch
        together.setdefault(id(model), (model, []))[1].append((len(results), stream, heard))
        results.append([0.0] * len(frames))
    for model, members in together.values():
        _score_together(model, members, batch, results)
    return results


def _whole(stream: VADStream, frames: Sequence[bytes]) -> bool:
    size = stream.frame_samples * 2
    return all(len(frame) == size for frame in frames)


def _score_together(
    model: VADBatch,
    members: list[tuple[int, BatchedVADStream, list[int]]],
    batch: list[_Request],
    results: list[list[float] | BaseException],
) -> None:
    """Score the heard frames of streams that share one batching model, in one go."""
    work = [(stream, [batch[row][1][i] for i in heard]) for row, stream, heard in members]
    if not any(frames for _, frames in work):
        return  # all quiet
    try:
        scored = model.score_streams([item for item in work if item[1]])
    except Exception as e:
        for row, _, _ in members:
            results[row] = e
        return
    it = iter(scored)
    for (row, _, heard), (_, frames) in zip(members, work, strict=True):
        if not frames:
            continue
        scores = results[row]
        assert isinstance(scores, list)
        for i, probability in zip(heard, next(it), strict=True):
            scores[i] = probability
