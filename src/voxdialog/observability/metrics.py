"""Prometheus metrics (prometheus-client's default registry, exposed at ``GET /metrics``)."""

from __future__ import annotations

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
FIRST_AUDIO = Histogram(
    "voxdialog_end_of_speech_to_first_audio_seconds",
    "From the end of the user's speech to the first reply audio.",
    buckets=(0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0),
)
