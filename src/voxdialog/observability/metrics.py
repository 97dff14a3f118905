"""Prometheus metrics (prometheus-client's default registry, exposed at ``GET /metrics``).

Labels stay bounded: chain and provider names, statuses and fixed reasons. Never a session,
user or item id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

PROVIDER_ERRORS = Counter(
    "voxdialog_provider_errors_total",
    "Failed provider attempts.",
    ["chain", "provider", "kind"],
)
PROVIDER_FAILOVERS = Counter(
    "voxdialog_provider_failovers_total",
    "Calls handed from a failed provider to the next in its chain.",
    ["chain", "provider", "next_provider"],
)
CHAIN_EXHAUSTED = Counter(
    "voxdialog_provider_chain_exhausted_total",
    "Calls for which every provider of a chain failed.",
    ["chain"],
)
ACTIVE_SESSIONS = Gauge("voxdialog_active_sessions", "Open Realtime sessions.")
TURNS = Counter("voxdialog_turns_total", "Responses, by final status.", ["status"])
BARGE_INS = Counter("voxdialog_barge_ins_total", "Responses cut off by the user speaking.")

# --- per-stage latency of a voice turn ------------------------------------------------------

#: Voice stages take from a few milliseconds (a speculative transcript that is ready) to a
#: few seconds (a slow model); the detail matters below one second.
STAGE_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
)

FIRST_AUDIO = Histogram(
    "voxdialog_end_of_speech_to_first_audio_seconds",
    "From the end of the user's speech to the first reply audio.",
    buckets=(0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0),
)
END_OF_TURN = Histogram(
    "voxdialog_end_of_turn_detection_seconds",
    "From the user's last voiced audio frame to the turn being committed.",
    buckets=STAGE_BUCKETS,
)
STT_FINAL = Histogram(
    "voxdialog_stt_final_transcript_seconds",
    "From a committed turn to its final transcript (near 0 when speculation had it ready).",
    buckets=(0.001, *STAGE_BUCKETS),
)
BRAIN_FIRST_TEXT = Histogram(
    "voxdialog_brain_first_text_seconds",
    "From the start of a reply (the transcript in hand) to the brain's first reply text.",
    buckets=(0.001, *STAGE_BUCKETS),
)
TTS_FIRST_AUDIO = Histogram(
    "voxdialog_tts_first_audio_seconds",
    "From a reply's first sentence going to text-to-speech to its first audio chunk.",
    buckets=STAGE_BUCKETS,
)

#: Which stored per-message timing (``MessageRecord.timings``, milliseconds) feeds which
#: histogram: metrics are observed from the very numbers that are stored.
_STAGE_TIMINGS: Mapping[str, Histogram] = {
    "end_of_turn_ms": END_OF_TURN,
    "stt_wait_ms": STT_FINAL,
    "brain_first_ms": BRAIN_FIRST_TEXT,
    "tts_first_chunk_ms": TTS_FIRST_AUDIO,
    "end_of_speech_to_first_audio_ms": FIRST_AUDIO,
}


def observe_stage_timings(timings: Mapping[str, float]) -> None:
    """Observe a message's final per-stage timings (milliseconds) in their histograms.

    Call it once per message, when its timings are final. Keys without a histogram (such as
    ``speculative``) are ignored.
    """
    for key, histogram in _STAGE_TIMINGS.items():
        value = timings.get(key)
        if value is not None:
            histogram.observe(max(0.0, value) / 1000)


# --- audio frames ---------------------------------------------------------------------------

#: A "frame" is one audio message on the wire: an ``input_audio_buffer.append`` in, a
#: ``response.output_audio.delta`` out. Their sizes are the client's and the encoder's.
AUDIO_FRAMES_IN = Counter(
    "voxdialog_audio_frames_in_total",
    "Input audio messages (input_audio_buffer.append) accepted.",
)
AUDIO_FRAMES_OUT = Counter(
    "voxdialog_audio_frames_out_total",
    "Reply audio messages (response.output_audio.delta) written to clients.",
)
AUDIO_FRAMES_DROPPED = Counter(
    "voxdialog_audio_frames_dropped_total",
    "Audio messages discarded, by reason.",
    ["reason"],
)
#: The reasons ``AUDIO_FRAMES_DROPPED`` knows (exported at 0 from the start).
DROP_INVALID_AUDIO = "invalid_audio"  # an append whose audio is not valid base64
DROP_BUFFER_FULL = "buffer_full"  # an append that pushed older audio out of a full buffer
DROP_CLIENT_GONE = "client_gone"  # reply audio left unsent because the socket died
for _reason in (DROP_INVALID_AUDIO, DROP_BUFFER_FULL, DROP_CLIENT_GONE):
    AUDIO_FRAMES_DROPPED.labels(_reason)

_AUDIO_OUT_EVENT = "response.output_audio.delta"


def count_audio_sent(event: Mapping[str, Any] | None) -> None:
    """Count ``event`` as a frame out if it is reply audio that reached the socket."""
    if event is not None and event.get("type") == _AUDIO_OUT_EVENT:
        AUDIO_FRAMES_OUT.inc()


def count_audio_unsent(event: Mapping[str, Any] | None) -> None:
    """Count ``event`` as a dropped frame if it is reply audio that will never be sent."""
    if event is not None and event.get("type") == _AUDIO_OUT_EVENT:
        AUDIO_FRAMES_DROPPED.labels(DROP_CLIENT_GONE).inc()


# --- event loop -----------------------------------------------------------------------------

LOOP_LAG = Histogram(
    "voxdialog_event_loop_lag_seconds",
    "How much later than asked the event loop woke a sleeping sampler.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
LOOP_LAG_LAST = Gauge(
    "voxdialog_event_loop_lag_last_seconds",
    "The event loop's lag at the last sample.",
)
