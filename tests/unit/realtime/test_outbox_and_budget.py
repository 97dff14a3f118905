"""The outbox is bounded in bytes and seconds of audio; the budgets refill at their rate."""

from __future__ import annotations

import asyncio

import pytest

from voxdialog.realtime.budget import TokenBucket, append_seconds
from voxdialog.realtime.outbox import Outbox, Outgoing


def event(size: int, audio_s: float = 0.0) -> Outgoing:
    return Outgoing("x" * size, "response.output_audio.delta", audio_s)


async def test_a_producer_waits_once_the_bytes_are_queued_and_goes_on_when_taken() -> None:
    box = Outbox(max_bytes=100, max_audio_s=10.0)
    assert await box.put(event(60))
    blocked = asyncio.create_task(box.put(event(60)))
    await asyncio.sleep(0.01)
    assert not blocked.done()  # 120 bytes would be over the bound
    assert box.queued_bytes == 60
    assert await box.get() == event(60)
    assert await asyncio.wait_for(blocked, 1.0)
    assert box.queued_bytes == 60


async def test_reply_audio_is_bounded_in_seconds() -> None:
    box = Outbox(max_bytes=10_000, max_audio_s=2.0)
    for _ in range(4):
        assert await box.put(event(10, audio_s=0.5))
    blocked = asyncio.create_task(box.put(event(10, audio_s=0.5)))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert box.queued_audio_s == pytest.approx(2.0)
    await box.get()
    assert await asyncio.wait_for(blocked, 1.0)


async def test_an_event_bigger_than_the_bound_goes_alone() -> None:
    box = Outbox(max_bytes=100, max_audio_s=2.0)
    assert await box.put(event(1000))
    blocked = asyncio.create_task(box.put(event(1)))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    await box.get()
    assert await asyncio.wait_for(blocked, 1.0)


async def test_closing_releases_waiting_producers_and_ends_the_writer_after_the_queue() -> None:
    box = Outbox(max_bytes=100, max_audio_s=2.0)
    await box.put(event(90))
    blocked = asyncio.create_task(box.put(event(90)))
    await asyncio.sleep(0.01)
    box.close()
    assert await asyncio.wait_for(blocked, 1.0) is False
    assert await box.get() == event(90)
    assert await box.get() is None
    assert box.discard() == []


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back
    assert bucket.take()
    assert not bucket.take()
    now[0] = 100.0  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_append_seconds_estimates_the_audio_in_base64() -> None:
    one_second_pcm24 = 4 * 48_000 // 3  # base64 of 48,000 bytes
    assert append_seconds("A" * one_second_pcm24, 48) == pytest.approx(1.0)
