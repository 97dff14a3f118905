"""Silero VAD v6 on onnxruntime: one shared session, one recurrent state per stream."""

from __future__ import annotations

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


class SileroVADStream:
    """One session's Silero state: LSTM ``h``/``c`` and the last frame's tail as context.

    Not thread-safe: one session feeds its stream from one place.
    """

    frame_samples: int = FRAME_SAMPLES

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self._session = session
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

    def reset(self) -> None:
        """Forget the recurrent state and the context (e.g. after a long gap)."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)


class SileroVAD:
    """Silero VAD v6 (ONNX). Loads the model once; every session opens its own stream.

    A frame costs about 0.2 ms of one CPU core, so callers may run it on the event loop.

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
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own untyped exceptions
            raise ProviderUnavailable(f"cannot load Silero VAD model {path}: {e}") from e
        self.info = ProviderInfo(
            name="silero", model=path.stem, streaming=True, sample_rate=PIPELINE_RATE
        )

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
        return SileroVADStream(self._session)
