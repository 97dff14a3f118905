"""ContextCache: cache-aside in front of a fake database, driven by a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from voxdialog.brain.base import HistoryMessage
from voxdialog.context import ContextCache
from voxdialog.testing.clock import FakeClock

KEY = "tenant:acme:conv:1"
OTHER = "tenant:acme:conv:2"
TTL = 10.0


class FakeDB:
    """Conversations by key; counts loads, can hold them at a gate or fail them."""

    def __init__(self) -> None:
        self.rows: dict[str, list[HistoryMessage]] = {}
        self.calls: list[str] = []
        self.started = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    async def load(self, key: str) -> Sequence[HistoryMessage]:
        self.calls.append(key)
        snapshot = list(self.rows.get(key, []))  # what the DB held when the query ran
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return snapshot

    def commit(self, key: str, *messages: HistoryMessage) -> None:
        self.rows.setdefault(key, []).extend(messages)


def msg(text: str, role: str = "user") -> HistoryMessage:
    return HistoryMessage(role=role, text=text)


def texts(messages: Sequence[HistoryMessage]) -> list[str]:
    return [m.text for m in messages]


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db() -> FakeDB:
    return FakeDB()


@pytest.fixture
def cache(db: FakeDB, clock: FakeClock) -> ContextCache:
    return ContextCache(db.load, ttl_s=TTL, clock=clock)


async def test_miss_loads_then_hits_from_memory(cache: ContextCache, db: FakeDB) -> None:
    db.commit(KEY, msg("hello"), msg("hi there", "assistant"))

    assert texts(await cache.get(KEY)) == ["hello", "hi there"]
    assert texts(await cache.get(KEY)) == ["hello", "hi there"]

    assert db.calls == [KEY]
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.loads) == (1, 1, 1)
    assert len(cache) == 1


async def test_an_unknown_conversation_is_cached_empty(cache: ContextCache, db: FakeDB) -> None:
    assert await cache.get(KEY) == []
    assert await cache.get(KEY) == []
    assert db.calls == [KEY]


async def test_expired_entry_is_reloaded(cache: ContextCache, db: FakeDB, clock: FakeClock) -> None:
    db.commit(KEY, msg("one"))
    await cache.get(KEY)
    db.commit(KEY, msg("two"))  # written by another process; only a reload sees it

    clock.advance(TTL + 0.5)
    assert texts(await cache.get(KEY)) == ["one", "two"]

    stats = cache.stats
    assert (stats.loads, stats.misses, stats.expirations) == (2, 2, 1)


async def test_ttl_slides_on_get(cache: ContextCache, db: FakeDB, clock: FakeClock) -> None:
    await cache.get(KEY)
    clock.advance(8.0)
    await cache.get(KEY)
    clock.advance(8.0)  # t=16: past the first deadline (10), within the refreshed one (18)
    await cache.get(KEY)

    assert cache.stats.loads == 1
    assert cache.stats.hits == 2


async def test_ttl_slides_on_append(cache: ContextCache, db: FakeDB, clock: FakeClock) -> None:
    await cache.get(KEY)
    clock.advance(8.0)
    db.commit(KEY, msg("later"))
    await cache.append(KEY, msg("later"))
    clock.advance(8.0)  # t=16

    assert texts(await cache.get(KEY)) == ["later"]
    assert cache.stats.loads == 1


async def test_append_trims_to_the_last_twenty_in_order(cache: ContextCache) -> None:
    await cache.get(KEY)
    for i in range(25):
        await cache.append(KEY, msg(f"m{i}"))

    assert texts(await cache.get(KEY)) == [f"m{i}" for i in range(5, 25)]


async def test_load_keeps_only_the_last_messages(cache: ContextCache, db: FakeDB) -> None:
    db.commit(KEY, *(msg(f"m{i}") for i in range(30)))

    assert texts(await cache.get(KEY)) == [f"m{i}" for i in range(10, 30)]


async def test_append_on_a_cold_key_loads_the_committed_messages_once(
    cache: ContextCache, db: FakeDB
) -> None:
    db.commit(KEY, msg("earlier"))
    turn = (msg("add milk"), msg("Added milk.", "assistant"))
    db.commit(KEY, *turn)  # append is called after the write committed

    await cache.append(KEY, *turn)

    assert db.calls == [KEY]
    assert texts(await cache.get(KEY)) == ["earlier", "add milk", "Added milk."]
    assert cache.stats.loads == 1


async def test_append_on_a_cold_key_replaces_a_load_that_predates_the_write(
    cache: ContextCache, db: FakeDB
) -> None:
    db.commit(KEY, msg("earlier"))
    db.gate = asyncio.Event()
    early_read = asyncio.create_task(cache.get(KEY))
    await until(db.started.is_set)  # this load saw the DB before the write below

    db.commit(KEY, msg("new"))
    late_append = asyncio.create_task(cache.append(KEY, msg("new")))
    await until(lambda: len(db.calls) == 2)
    db.gate.set()
    await late_append

    assert texts(await early_read) == ["earlier", "new"]
    assert texts(await cache.get(KEY)) == ["earlier", "new"]


async def test_least_recently_used_entry_is_evicted(db: FakeDB, clock: FakeClock) -> None:
    cache = ContextCache(db.load, max_entries=2, clock=clock)
    await cache.get("a")
    await cache.get("b")
    await cache.get("a")  # now "b" is the least recently used

    await cache.get("c")
    assert len(cache) == 2
    assert cache.stats.evictions == 1

    await cache.get("a")
    await cache.get("c")
    assert db.calls == ["a", "b", "c"]
    await cache.get("b")
    assert db.calls == ["a", "b", "c", "b"]
    assert cache.stats.evictions == 2


async def test_concurrent_misses_share_one_load(cache: ContextCache, db: FakeDB) -> None:
    db.commit(KEY, msg("hello"))
    db.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.get(KEY)) for _ in range(10)]
    await until(db.started.is_set)
    await until(lambda: cache.stats.misses == 10)

    db.gate.set()
    results = await asyncio.gather(*readers)

    assert db.calls == [KEY]
    assert all(texts(r) == ["hello"] for r in results)
    assert cache.stats.loads == 1


async def test_loader_failure_reaches_every_waiter_and_caches_nothing(
    cache: ContextCache, db: FakeDB
) -> None:
    db.gate = asyncio.Event()
    db.error = ConnectionError("database down")
    readers = [asyncio.create_task(cache.get(KEY)) for _ in range(5)]
    await until(lambda: cache.stats.misses == 5)

    db.gate.set()
    results = await asyncio.gather(*readers, return_exceptions=True)

    assert all(isinstance(r, ConnectionError) for r in results)
    assert db.calls == [KEY]
    assert len(cache) == 0

    db.error = None
    db.commit(KEY, msg("back"))
    assert texts(await cache.get(KEY)) == ["back"]
    assert db.calls == [KEY, KEY]


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load(
    cache: ContextCache, db: FakeDB
) -> None:
    db.commit(KEY, msg("hello"))
    db.gate = asyncio.Event()
    quitter = asyncio.create_task(cache.get(KEY))
    stayer = asyncio.create_task(cache.get(KEY))
    await until(lambda: cache.stats.misses == 2)

    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    db.gate.set()

    assert texts(await stayer) == ["hello"]
    assert len(cache) == 1


async def test_returned_lists_are_independent_copies(cache: ContextCache, db: FakeDB) -> None:
    db.commit(KEY, msg("hello"))
    first = await cache.get(KEY)
    first.append(msg("injected"))
    first.clear()

    second = await cache.get(KEY)
    assert texts(second) == ["hello"]
    assert second is not await cache.get(KEY)


async def test_stats_is_a_snapshot(cache: ContextCache) -> None:
    snapshot = cache.stats
    snapshot.hits = 99
    assert cache.stats.hits == 0


async def test_invalidate_forces_a_reload(cache: ContextCache, db: FakeDB) -> None:
    db.commit(KEY, msg("old"))
    await cache.get(KEY)
    db.rows[KEY] = [msg("rewritten")]

    cache.invalidate(KEY)

    assert len(cache) == 0
    assert texts(await cache.get(KEY)) == ["rewritten"]


async def test_invalidate_during_a_load_keeps_its_result_out_of_the_cache(
    cache: ContextCache, db: FakeDB
) -> None:
    db.commit(KEY, msg("old"))
    db.gate = asyncio.Event()
    reader = asyncio.create_task(cache.get(KEY))
    await until(db.started.is_set)

    cache.invalidate(KEY)
    db.gate.set()

    assert texts(await reader) == ["old"]
    assert len(cache) == 0


async def test_purge_expired_counts_what_it_dropped(cache: ContextCache, clock: FakeClock) -> None:
    await cache.get("a")
    await cache.get("b")
    clock.advance(5.0)
    await cache.get("c")

    clock.advance(TTL + 1 - 5.0)  # t=11: "a" and "b" expired at 10, "c" lives until 15
    assert cache.purge_expired() == 2
    assert len(cache) == 1
    assert cache.stats.expirations == 2
    assert cache.purge_expired() == 0


async def test_run_cleanup_purges_until_cancelled(cache: ContextCache, clock: FakeClock) -> None:
    await cache.get(KEY)
    cleanup = asyncio.create_task(cache.run_cleanup(interval_s=0.001))

    clock.advance(TTL + 1)
    await until(lambda: len(cache) == 0)
    assert cache.stats.expirations == 1

    cleanup.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cleanup
    assert cleanup.cancelled()


async def test_run_cleanup_rejects_a_non_positive_interval(cache: ContextCache) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        await cache.run_cleanup(interval_s=0)


@pytest.mark.parametrize(
    "limits",
    [{"ttl_s": 0.0}, {"max_messages": 0}, {"max_entries": 0}],
)
def test_limits_must_be_positive(db: FakeDB, limits: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="positive"):
        ContextCache(db.load, **limits)


async def test_session_lock_serializes_read_modify_write(cache: ContextCache, db: FakeDB) -> None:
    """Each turn numbers its message by the history it read: a lost update repeats a number."""
    first_has_read = asyncio.Event()
    let_first_finish = asyncio.Event()
    seen_by_second: list[int] = []

    async def turn(wait_before_writing: asyncio.Event | None, seen: list[int]) -> None:
        async with cache.lock(KEY):
            history = await cache.get(KEY)
            seen.append(len(history))
            if wait_before_writing is not None:
                first_has_read.set()
                await wait_before_writing.wait()
            reply = msg(f"turn {len(history)}")
            db.commit(KEY, reply)
            await cache.append(KEY, reply)

    first = asyncio.create_task(turn(let_first_finish, []))
    await until(first_has_read.is_set)
    second = asyncio.create_task(turn(None, seen_by_second))
    for _ in range(10):  # give the second turn every chance to read too early
        await asyncio.sleep(0)
    assert seen_by_second == []

    let_first_finish.set()
    await asyncio.gather(first, second)

    assert texts(await cache.get(KEY)) == ["turn 0", "turn 1"]
    assert seen_by_second == [1]


async def test_lock_is_shared_per_key_and_dropped_with_its_entry(
    cache: ContextCache, clock: FakeClock
) -> None:
    lock = cache.lock(KEY)
    assert cache.lock(KEY) is lock
    assert cache.lock(OTHER) is not lock
    await cache.get(KEY)

    cache.invalidate(KEY)

    assert cache.lock(KEY) is not lock


async def test_a_held_lock_outlives_its_evicted_entry(db: FakeDB, clock: FakeClock) -> None:
    cache = ContextCache(db.load, ttl_s=TTL, max_entries=1, clock=clock)
    lock = cache.lock(KEY)
    async with lock:
        await cache.get(KEY)
        await cache.get(OTHER)  # evicts KEY's entry while its turn is running
        assert cache.lock(KEY) is lock

        clock.advance(TTL + 1)
        cache.purge_expired()
        assert cache.lock(KEY) is lock

    cache.purge_expired()
    assert cache.lock(KEY) is not lock


async def test_a_lock_with_a_waiter_is_kept_after_release(
    cache: ContextCache, clock: FakeClock
) -> None:
    lock = cache.lock(KEY)
    await lock.acquire()
    waiter = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)
    lock.release()  # the waiter is woken but has not run yet: the lock reads as free

    cache.purge_expired()
    assert cache.lock(KEY) is lock

    await waiter
    lock.release()
    cache.purge_expired()
    assert cache.lock(KEY) is not lock
