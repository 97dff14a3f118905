"""Silero VAD v6 on onnxruntime: one shared session, one recurrent state per stream.

The v6 export that ships in faster-whisper runs the frames of *one* stream through its LSTM
(its state is fixed at batch 1). At load time we give the graph one more node, a transpose that
turns the rows of the input into the LSTM's batch, and free the state's batch size: one call
then steps every waiting stream by one frame (the scores are identical; see the tests). That
cuts the model's cost per frame and, more, the number of calls: one GIL hand-over per tick
instead of one per frame of every session.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime

from voxdialog.audio.formats import PIPELINE_RATE, SAMPLE_WIDTH
from voxdialog.providers.base import ProviderError, ProviderInfo, ProviderUnavailable

#: Samples per frame the v6 model is trained on at 16 kHz (32 ms).
FRAME_SAMPLES = 512
#: The model also sees the previous frame's last samples; without them v6 scores are off.
_CONTEXT_SAMPLES = 64
_STATE_SHAPE = (1, 1, 128)

_Floats = npt.NDArray[np.float32]


def bundled_model_path() -> Path:
    """The Silero VAD v6 ONNX file that ships inside the faster-whisper wheel."""
    import faster_whisper  # deferred: importing it loads CTranslate2, which VAD users never need

    return Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"


def streams_as_batch(model_path: Path) -> bytes:
    """The v6 graph with its LSTM batched over the input's rows (one row per stream).

    Raises:
        ValueError: The graph is not the v6 layout this expects (one LSTM fed by a transpose).
    """
    import onnx  # deferred: only needed once, while loading

    model = onnx.load(str(model_path))
    graph = model.graph
    lstms = [node for node in graph.node if node.op_type == "LSTM"]
    if len(lstms) != 1:
        raise ValueError(f"expected one LSTM in {model_path.name}, found {len(lstms)}")
    lstm = lstms[0]
    # Rows arrive as the LSTM's time axis ([rows, 1, features]); make them its batch axis.
    swap = onnx.helper.make_node(
        "Transpose", [lstm.input[0]], ["rows_as_batch"], perm=[1, 0, 2], name="rows_as_batch"
    )
    lstm.input[0] = "rows_as_batch"
    graph.node.insert(list(graph.node).index(lstm), swap)
    names = {"h": 1, "c": 1, "hn": 1, "cn": 1, "input": 0, "speech_probs": 0}
    for value in [*graph.input, *graph.output]:
        if value.name in names:
            dim = value.type.tensor_type.shape.dim[names[value.name]]
            dim.ClearField("dim_value")
            dim.dim_param = "streams"
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


class SileroVADStream:
    """One session's Silero state: LSTM ``h``/``c`` and the last frame's tail as context.

    Not thread-safe: one session feeds its stream from one place.
    """

    frame_samples: int = FRAME_SAMPLES

    def __init__(self, session: onnxruntime.InferenceSession, batch: SileroBatch) -> None:
        self._session = session
        self._batch = batch
        self._h: _Floats = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c: _Floats = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context: _Floats = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)

    def speech_probability(self, frame: bytes) -> float:
        """Probability in [0, 1] that ``frame`` holds speech.

        Args:
            frame: exactly 512 PCM16 samples at 16 kHz.

        Raises:
            ValueError: the frame is not 512 samples long.
        """
        if len(frame) != FRAME_SAMPLES * SAMPLE_WIDTH:
            raise ValueError(
                f"Silero VAD needs frames of {FRAME_SAMPLES} PCM16 samples "
                f"({FRAME_SAMPLES * SAMPLE_WIDTH} bytes), got {len(frame)} bytes"
            )
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        model_input = np.concatenate((self._context, samples))[np.newaxis, :]
        probs, h, c = self._session.run(None, {"input": model_input, "h": self._h, "c": self._c})
        self._h = np.asarray(h, dtype=np.float32)
        self._c = np.asarray(c, dtype=np.float32)
        self._context = samples[-_CONTEXT_SAMPLES:]
        return min(1.0, max(0.0, float(np.asarray(probs).reshape(-1)[0])))

    @property
    def batch(self) -> SileroBatch:
        """Scores this stream's frames together with other streams of the same model."""
        return self._batch

    def reset(self) -> None:
        """Forget the recurrent state and the context (e.g. after a long gap)."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)


class SileroBatch:
    """Steps many streams of one model together: one ``run`` per frame position."""

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self._session = session

    def score_streams(
        self, work: Sequence[tuple[SileroVADStream, Sequence[bytes]]]
    ) -> list[list[float]]:
        """The speech probability of each frame of each stream (see ``VADBatch``).

        Raises:
            ValueError: A frame is not 512 samples long (nothing is scored then).
        """
        size = FRAME_SAMPLES * SAMPLE_WIDTH
        for _, frames in work:
            for frame in frames:
                if len(frame) != size:
                    raise ValueError(
                        f"Silero VAD needs frames of {FRAME_SAMPLES} PCM16 samples "
                        f"({size} bytes), got {len(frame)} bytes"
                    )
        results: list[list[float]] = [[] for _ in work]
        steps = max((len(frames) for _, frames in work), default=0)
        for step in range(steps):
            rows = [i for i, (_, frames) in enumerate(work) if step < len(frames)]
            self._step([work[i][0] for i in rows], [work[i][1][step] for i in rows], results, rows)
        return results

    def _step(
        self,
        streams: list[SileroVADStream],
        frames: list[bytes],
        results: list[list[float]],
        rows: list[int],
    ) -> None:
        count = len(streams)
        samples = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float32)
        samples = samples.reshape(count, FRAME_SAMPLES) / np.float32(32768.0)
        contexts = np.stack([stream._context for stream in streams])
        model_input = np.concatenate((contexts, samples), axis=1)
        h = np.concatenate([stream._h for stream in streams], axis=1)
        c = np.concatenate([stream._c for stream in streams], axis=1)
        probs, hn, cn = self._session.run(None, {"input": model_input, "h": h, "c": c})
        scores = np.clip(np.asarray(probs, dtype=np.float32).reshape(-1), 0.0, 1.0)
        hn = np.asarray(hn, dtype=np.float32)
        cn = np.asarray(cn, dtype=np.float32)
        for k, stream in enumerate(streams):
            stream._h = hn[:, k : k + 1, :].copy()
            stream._c = cn[:, k : k + 1, :].copy()
            stream._context = samples[k, -_CONTEXT_SAMPLES:].copy()
            results[rows[k]].append(float(scores[k]))


class SileroVAD:
    """Silero VAD v6 (ONNX). Loads the model once; every session opens its own stream.

    A frame costs about 0.07 ms of one CPU core alone, less in a batch of streams
    (``SileroBatch``), so one-off callers may run it on the event loop.

    Args:
        model_path: the ONNX file; ``None`` means the one bundled in faster-whisper.

    Raises:
        ProviderUnavailable: the model file is missing or cannot be loaded.
    """

    def __init__(self, model_path: Path | str | None = None) -> None:
        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_file():
            raise ProviderUnavailable(f"Silero VAD model not found: {path}")
        options = onnxruntime.SessionOptions()
        # One thread each: a frame is tiny, and many sessions share two cores with STT and TTS.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 4
        try:
            # InferenceSession.run is thread-safe, so one session serves every stream.
            self._session = onnxruntime.InferenceSession(
                streams_as_batch(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own untyped exceptions
            raise ProviderUnavailable(f"cannot load Silero VAD model {path}: {e}") from e
        self.info = ProviderInfo(
            name="silero", model=path.stem, streaming=True, sample_rate=PIPELINE_RATE
        )
        self._batch = SileroBatch(self._session)

    def open_stream(self, sample_rate: int) -> SileroVADStream:
        """Start a fresh per-session stream.

        Args:
            sample_rate: must be 16000 (the pipeline rate; resample before the VAD).

        Raises:
            ProviderError: any other rate (not retryable).
        """
        if sample_rate != PIPELINE_RATE:
            raise ProviderError(
                f"Silero VAD runs at {PIPELINE_RATE} Hz, not {sample_rate} Hz", retryable=False
            )
        return SileroVADStream(self._session, self._batch)
