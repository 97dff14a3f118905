"""PrioritySlots hand a freed slot to the most urgent waiter; cancelled waiters leave."""

from __future__ import annotations

import asyncio

import pytest

from voxdialog.providers.local.slots import PrioritySlots


async def test_the_most_urgent_waiter_goes_next_then_first_come() -> None:
    slots = PrioritySlots(1)
    await slots.acquire(0)
    order: list[str] = []

    async def job(name: str, priority: int) -> None:
        await slots.acquire(priority)
        order.append(name)
        await asyncio.sleep(0)
        slots.release()

    tasks = [
        asyncio.create_task(job(name, priority))
        for name, priority in [("upload", 3), ("guess", 1), ("live-a", 0), ("live-b", 0)]
    ]
    await asyncio.sleep(0.01)
    assert slots.waiting == 4
    slots.release()
    await asyncio.gather(*tasks)
    assert order == ["live-a", "live-b", "guess", "upload"]
    assert not slots.locked


async def test_a_cancelled_waiter_leaves_and_never_holds_a_slot() -> None:
    slots = PrioritySlots(1)
    await slots.acquire(0)
    dropped = asyncio.create_task(slots.acquire(1))
    kept = asyncio.create_task(slots.acquire(2))
    await asyncio.sleep(0.01)
    dropped.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dropped
    slots.release()
    await asyncio.wait_for(kept, 1)
    assert slots.locked
    slots.release()
    assert not slots.locked


async def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_is_passed_on() -> None:
    slots = PrioritySlots(1)
    await slots.acquire(0)
    first = asyncio.create_task(slots.acquire(0))
    second = asyncio.create_task(slots.acquire(0))
    await asyncio.sleep(0.01)
    slots.release()  # hands the slot to ``first``...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert slots.locked


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PrioritySlots(0)
