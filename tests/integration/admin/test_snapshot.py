"""The read-only views behind the admin API: bucket percentiles, breakers, recent warnings."""

from __future__ import annotations

import logging
import math
import uuid

import pytest
from prometheus_client import CollectorRegistry, Histogram

from voxdialog.audio.formats import PIPELINE_RATE, AudioChunk
from voxdialog.observability.snapshot import (
    RECENT_LOG_ERRORS,
    RecentLogErrors,
    bucket_quantile,
    providers_snapshot,
    stage_latency,
)
from voxdialog.providers.chain import CallPolicy, FallbackSTT
from voxdialog.testing.clock import FakeClock
from voxdialog.testing.fakes import FakeSTT, FakeTTS

INF = math.inf


def test_bucket_quantiles_interpolate_inside_the_bucket_like_prometheus() -> None:
    # 10 samples: 4 up to 0.1 s, 4 more up to 0.2 s, 2 more up to 0.5 s.
    buckets = [(0.1, 4.0), (0.2, 8.0), (0.5, 10.0), (INF, 10.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.125)
    assert bucket_quantile(0.95, buckets) == pytest.approx(0.425)
    assert bucket_quantile(0.2, buckets) == pytest.approx(0.05)
    assert bucket_quantile(1.0, buckets) == pytest.approx(0.5)


def test_a_rank_beyond_the_last_bound_answers_that_bound_and_empty_answers_none() -> None:
    assert bucket_quantile(0.95, [(0.1, 1.0), (0.2, 1.0), (INF, 10.0)]) == pytest.approx(0.2)
    assert bucket_quantile(0.5, [(0.1, 0.0), (INF, 0.0)]) is None
    assert bucket_quantile(0.5, []) is None
    with pytest.raises(ValueError, match="quantile"):
        bucket_quantile(1.5, [(INF, 1.0)])


def test_stage_latency_reads_a_histogram_in_milliseconds() -> None:
    histogram = Histogram(
        "test_stage_seconds", "A test stage.", buckets=(0.1, 0.2), registry=CollectorRegistry()
    )
    empty = stage_latency("empty", histogram)
    for seconds in (0.05, 0.05, 0.15, 0.15):
        histogram.observe(seconds)
    filled = stage_latency("filled", histogram)
    assert (empty.count, empty.p50_ms, empty.p95_ms, empty.mean_ms) == (0, None, None, None)
    assert filled.count == 4
    assert filled.mean_ms == pytest.approx(100.0)
    assert filled.p50_ms == pytest.approx(100.0)
    assert filled.p95_ms == pytest.approx(190.0)


async def test_a_chain_shows_each_members_breaker_and_errors() -> None:
    clock = FakeClock()
    name = f"stt-{uuid.uuid4().hex[:6]}"
    chain = FallbackSTT(
        [FakeSTT(fail_first=10, retryable=False), FakeSTT(["hello"])],
        policy=CallPolicy(breaker_failures=1, breaker_reset_s=5.0),
        clock=clock,
        name=name,
    )
    await chain.transcribe(AudioChunk(bytes(PIPELINE_RATE // 10 * 2), PIPELINE_RATE))
    opened = providers_snapshot([chain, chain, object()], {"stt": chain, "tts": None})
    clock.advance(5.0)
    later = providers_snapshot([chain], {})

    assert [(s.stage, s.name) for s in opened.stages] == [("stt", name), ("tts", None)]
    assert len(opened.chains) == 1
    state = opened.chains[0]
    assert (state.name, state.stage, state.available, state.failovers) == (name, "stt", True, 1)
    first, second = state.providers
    assert (first.name, first.breaker, first.errors, first.consecutive_failures) == (
        "fake-stt",
        "open",
        1,
        1,
    )
    assert first.last_error is not None
    assert "fake STT failure" in first.last_error
    assert (second.name, second.breaker, second.errors) == ("fake-stt#2", "closed", 0)
    assert later.chains[0].providers[0].breaker == "half_open"
    failover = [e for e in RECENT_LOG_ERRORS.entries() if e.fields.get("chain") == name]
    assert [e.message for e in failover] == ["provider failover"]
    assert failover[0].fields["next_provider"] == "fake-stt#2"


def test_a_single_provider_stage_has_no_chain() -> None:
    snapshot = providers_snapshot([], {"tts": FakeTTS()})
    assert snapshot.chains == []
    assert snapshot.stages[0].name == "fake-tts"


def test_the_warning_buffer_keeps_templates_without_arguments_and_drops_the_oldest() -> None:
    buffer = RecentLogErrors(capacity=2)
    logger = logging.getLogger(f"voxdialog.tests.snapshot.{uuid.uuid4().hex}")
    logger.addHandler(buffer)
    try:
        logger.info("not kept: below WARNING")
        logger.warning("first %s", "dropped")
        logger.warning("user said %s", "a private transcript", extra={"provider": "whisper"})
        try:
            raise TimeoutError("details")
        except TimeoutError:
            logger.exception("call failed", extra={"transcript": "never kept"})
    finally:
        logger.removeHandler(buffer)
    newest, older = buffer.entries()
    assert (newest.level, newest.message, newest.fields) == (
        "ERROR",
        "call failed",
        {"error_kind": "TimeoutError"},
    )
    assert (older.level, older.message, older.fields) == (
        "WARNING",
        "user said %s",
        {"provider": "whisper"},
    )
    assert "private" not in repr(buffer.entries())
