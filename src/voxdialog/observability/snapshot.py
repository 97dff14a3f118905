"""Read-only views of the process's metrics, provider chains and recent warnings.

The admin API shows these; nothing here changes what it reads. Metrics come from the
prometheus-client objects of ``observability.metrics`` (so the numbers match ``GET /metrics``),
provider health from the chains' own ``health()``, and recent warnings from a bounded ring
buffer fed by a logging handler on the ``voxdialog`` logger.

The ring buffer keeps, per record: the time, level, logger name, the message *template*
(``record.msg`` before ``%`` formatting, so arguments are never stored) and a short allow-list
of structured fields that name things, never content (``chain``, ``provider``, ``error_kind``,
``status``, ``session_id`` ...). Transcripts, prompts and credentials are never among them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from voxdialog.observability.logging import ContextFieldsFilter
from voxdialog.observability.metrics import (
    ACTIVE_SESSIONS,
    AUDIO_FRAMES_DROPPED,
    AUDIO_FRAMES_IN,
    AUDIO_FRAMES_OUT,
    BARGE_INS,
    BRAIN_FIRST_TEXT,
    END_OF_TURN,
    FIRST_AUDIO,
    LOOP_LAG,
    LOOP_LAG_LAST,
    STT_FINAL,
    TTS_FIRST_AUDIO,
    TURNS,
)
from voxdialog.providers.chain import FallbackLLM, FallbackSTT, FallbackTTS, ProviderChain

#: Stage name shown to admins -> the histogram that times it.
STAGE_HISTOGRAMS: Mapping[str, Histogram] = {
    "end_of_turn": END_OF_TURN,
    "stt": STT_FINAL,
    "brain": BRAIN_FIRST_TEXT,
    "tts": TTS_FIRST_AUDIO,
    "end_of_speech_to_first_audio": FIRST_AUDIO,
}

#: Structured log fields safe to keep: identifiers and error kinds, never content.
SAFE_LOG_FIELDS = (
    "chain",
    "provider",
    "next_provider",
    "phase",
    "error_kind",
    "status",
    "code",
    "session_id",
    "turn_id",
    "response_id",
)
_MAX_MESSAGE_CHARS = 200
_MAX_FIELD_CHARS = 100

# --- metrics --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageLatency:
    """Latency of one voice stage since the process started.

    Percentiles are estimated from the histogram's buckets the way Prometheus'
    ``histogram_quantile`` does it (linear inside a bucket), so they are only as fine as the
    buckets; ``None`` when the stage has no samples yet.
    """

    stage: str
    count: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class EventLoopLag:
    """How late the event loop wakes sleepers (sampled by ``sample_loop_lag``)."""

    last_ms: float
    p95_ms: float | None
    samples: int


@dataclass(frozen=True, slots=True)
class AudioFrames:
    """Audio messages in and out of Realtime sockets, and those dropped (by reason)."""

    received: int
    sent: int
    dropped: dict[str, int]


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """What the admin page's metrics panel shows; every count is since the process started."""

    stages: list[StageLatency]
    turns: dict[str, int]
    barge_ins: int
    active_sessions: int
    event_loop: EventLoopLag
    audio_frames: AudioFrames


@dataclass(frozen=True, slots=True)
class _Buckets:
    """A histogram's cumulative buckets ``(upper bound, count)``, ``+Inf`` last, and its sum."""

    bounds: list[tuple[float, float]]
    total: float
    sum: float


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a histogram from its cumulative buckets.

    Interpolates linearly inside the bucket holding the rank, like Prometheus'
    ``histogram_quantile``; a rank in the ``+Inf`` bucket answers the highest finite bound.

    Args:
        q: The quantile, between 0 and 1.
        buckets: ``(upper bound, cumulative count)`` in increasing bound order, ``+Inf`` last.

    Returns:
        The estimate, or None when the histogram is empty.

    Raises:
        ValueError: ``q`` is outside [0, 1].
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError("a quantile lies between 0 and 1")
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank and cumulative > below:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (cumulative - below)
        lower, below = upper, cumulative
    return lower


def _buckets(histogram: Histogram) -> _Buckets:
    bounds: list[tuple[float, float]] = []
    total = 0.0
    seconds = 0.0
    for family in histogram.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bounds.append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                total = sample.value
            elif sample.name.endswith("_sum"):
                seconds = sample.value
    bounds.sort(key=lambda bound: bound[0])
    return _Buckets(bounds, total, seconds)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def stage_latency(stage: str, histogram: Histogram) -> StageLatency:
    """p50, p95 and mean of one stage histogram, in milliseconds."""
    buckets = _buckets(histogram)
    count = int(buckets.total)
    return StageLatency(
        stage=stage,
        count=count,
        mean_ms=_ms(buckets.sum / buckets.total) if count else None,
        p50_ms=_ms(bucket_quantile(0.5, buckets.bounds)),
        p95_ms=_ms(bucket_quantile(0.95, buckets.bounds)),
    )


def _counter_values(counter: Counter, label: str) -> dict[str, int]:
    """``{label value: count}`` of a labelled counter."""
    return {
        sample.labels[label]: int(sample.value)
        for family in counter.collect()
        for sample in family.samples
        if sample.name.endswith("_total") and label in sample.labels
    }


def _single_value(metric: Counter | Gauge) -> float:
    """The value of an unlabelled counter (its ``_total``) or gauge."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == family.name or sample.name.endswith("_total"):
                return float(sample.value)
    return 0.0


def metrics_snapshot() -> MetricsSnapshot:
    """The current per-stage latencies, turn and barge-in counts, loop lag and frame counts."""
    lag = _buckets(LOOP_LAG)
    return MetricsSnapshot(
        stages=[stage_latency(name, hist) for name, hist in STAGE_HISTOGRAMS.items()],
        turns=_counter_values(TURNS, "status"),
        barge_ins=int(_single_value(BARGE_INS)),
        active_sessions=int(_single_value(ACTIVE_SESSIONS)),
        event_loop=EventLoopLag(
            last_ms=_ms(_single_value(LOOP_LAG_LAST)) or 0.0,
            p95_ms=_ms(bucket_quantile(0.95, lag.bounds)),
            samples=int(lag.total),
        ),
        audio_frames=AudioFrames(
            received=int(_single_value(AUDIO_FRAMES_IN)),
            sent=int(_single_value(AUDIO_FRAMES_OUT)),
            dropped=_counter_values(AUDIO_FRAMES_DROPPED, "reason"),
        ),
    )


# --- providers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderState:
    """One provider of a chain: its breaker and its failures since the process started."""

    name: str
    breaker: str
    consecutive_failures: int
    errors: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class ChainState:
    """A fallback chain (two or more providers tried in order) and each member's health."""

    name: str
    stage: str
    model: str
    available: bool
    failovers: int
    providers: list[ProviderState]


@dataclass(frozen=True, slots=True)
class StageProvider:
    """What the default agent uses for one stage (a single provider or a chain's name)."""

    stage: str
    name: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class ProvidersSnapshot:
    """The default agent's stages and every provider chain with its circuit breakers.

    A single provider has no breaker; only chains fail over, so only they appear in ``chains``.
    """

    stages: list[StageProvider]
    chains: list[ChainState]


def _chain_stage(chain: ProviderChain[Any]) -> str:
    if isinstance(chain, FallbackLLM):
        return "llm"
    if isinstance(chain, FallbackSTT):
        return "stt"
    if isinstance(chain, FallbackTTS):
        return "tts"
    return "unknown"


def chain_state(chain: ProviderChain[Any]) -> ChainState:
    """A chain's members with breaker state (``closed``, ``open`` or ``half_open``)."""
    return ChainState(
        name=chain.name,
        stage=_chain_stage(chain),
        model=chain.info.model,
        available=chain.available(),
        failovers=chain.failovers,
        providers=[
            ProviderState(
                name=health.name,
                breaker=health.state,
                consecutive_failures=health.consecutive_failures,
                errors=health.errors,
                last_error=health.last_error,
            )
            for health in chain.health()
        ],
    )


def providers_snapshot(
    chains: Iterable[object], stages: Mapping[str, object | None]
) -> ProvidersSnapshot:
    """The providers' health.

    Args:
        chains: Every chain built (``ProviderAssembly.chains``); other objects are skipped.
        stages: Stage name -> the default agent's provider for it (None: not loaded).
    """
    seen: set[int] = set()
    states: list[ChainState] = []
    for chain in chains:
        if isinstance(chain, ProviderChain) and id(chain) not in seen:
            seen.add(id(chain))
            states.append(chain_state(chain))
    return ProvidersSnapshot(
        stages=[_stage_provider(stage, provider) for stage, provider in stages.items()],
        chains=states,
    )


def _stage_provider(stage: str, provider: object | None) -> StageProvider:
    info = getattr(provider, "info", None)
    return StageProvider(
        stage=stage,
        name=getattr(info, "name", None),
        model=getattr(info, "model", None),
    )


# --- recent warnings and errors -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A WARNING-or-worse record, stripped to what is safe to show an operator."""

    at: dt.datetime
    level: str
    logger: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)


class RecentLogErrors(logging.Handler):
    """Keeps the last ``capacity`` WARNING+ records as ``LogEntry`` values (thread-safe).

    Args:
        capacity: How many entries to keep; older ones fall off.
    """

    def __init__(self, capacity: int = 100) -> None:
        super().__init__(level=logging.WARNING)
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._guard = threading.Lock()
        # The session/turn ids bound with log_context() ride on a context variable.
        self.addFilter(ContextFieldsFilter())

    def emit(self, record: logging.LogRecord) -> None:
        """Store ``record`` without its arguments (a handler must never raise)."""
        try:
            entry = _entry(record)
        except Exception:
            self.handleError(record)
            return
        with self._guard:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        """The kept entries, newest first."""
        with self._guard:
            return list(reversed(self._entries))


def _entry(record: logging.LogRecord) -> LogEntry:
    # record.msg is the template; record.args (which may carry user content) is ignored.
    message = str(record.msg)[:_MAX_MESSAGE_CHARS]
    fields = {
        key: str(value)[:_MAX_FIELD_CHARS]
        for key in SAFE_LOG_FIELDS
        if (value := getattr(record, key, None)) is not None
    }
    if record.exc_info and record.exc_info[0] is not None:
        fields.setdefault("error_kind", record.exc_info[0].__name__)
    return LogEntry(
        at=dt.datetime.fromtimestamp(record.created, dt.UTC),
        level=record.levelname,
        logger=record.name,
        message=message,
        fields=fields,
    )


#: The process-wide buffer behind ``GET /api/admin/errors``.
RECENT_LOG_ERRORS = RecentLogErrors()


def install_recent_log_errors(logger_name: str = "voxdialog") -> RecentLogErrors:
    """Attach ``RECENT_LOG_ERRORS`` to ``logger_name`` (once; later calls change nothing).

    Records of child loggers (``voxdialog.*``) reach it by propagation.
    """
    logger = logging.getLogger(logger_name)
    if RECENT_LOG_ERRORS not in logger.handlers:
        logger.addHandler(RECENT_LOG_ERRORS)
    return RECENT_LOG_ERRORS


# Attached on import: the admin routes import this module when the app is built, so warnings
# from the first request on are kept.
install_recent_log_errors()
