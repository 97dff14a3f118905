"""An in-memory, cache-aside store of each conversation's recent messages.

The database is the source of truth; this cache only saves re-reading the last messages on
every turn and lets a client that reconnects (a new WebSocket, the same conversation id)
continue where it left off. Dropping an entry (TTL expiry, LRU eviction, ``invalidate``)
never loses data: the next ``get`` reloads it through the injected loader.

Keys are opaque to the cache and are **tenant-scoped by the caller**, e.g.
``"tenant:<tenant_id>:conv:<conversation_id>"``. The cache never checks who asks, so a key
without the tenant would let one tenant read another's conversation.

How callers use it (one turn of one session)::

    async with cache.lock(key):               # turns of one session run one at a time
        history = await cache.get(key)
        ...                                   # run the brain, write the messages, commit
        await cache.append(key, user_message, assistant_message)

Every read that may race a turn of the same session should hold ``lock(key)`` too: a load
that reads the database after a commit but is stored before that turn's ``append`` would
otherwise hold the new messages twice.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from voxdialog.brain.base import HistoryMessage
from voxdialog.clock import Clock, MonotonicClock

#: Reads a conversation's messages from the database, oldest first (newest last).
Loader = Callable[[str], Awaitable[Sequence[HistoryMessage]]]
_Loaded = tuple[HistoryMessage, ...]


@dataclass(slots=True)
class CacheStats:
    """Counters since the cache was created.

    Attributes:
        hits: ``get`` calls answered from memory.
        misses: ``get`` calls that had to wait for a load (missing or expired key).
        loads: Calls made to the loader (concurrent misses of one key share a call).
        evictions: Entries dropped because ``max_entries`` was reached (least recently used).
        expirations: Entries dropped because their TTL ran out.
    """

    hits: int = 0
    misses: int = 0
    loads: int = 0
    evictions: int = 0
    expirations: int = 0


@dataclass(slots=True)
class _Entry:
    messages: deque[HistoryMessage]
    expires_at: float


class _SessionLock(asyncio.Lock):
    """An ``asyncio.Lock`` that knows whether anyone holds it or waits for it.

    ``locked()`` alone is not enough: between a release and the next waiter's wake-up the
    lock reads as free, and dropping it then would hand a newcomer a second, unrelated lock.
    """

    def __init__(self) -> None:
        super().__init__()
        self._claims = 0

    @property
    def idle(self) -> bool:
        """Whether nobody holds the lock or waits for it."""
        return self._claims == 0

    async def acquire(self) -> Literal[True]:
        """Acquire the lock, counting the caller as a claimant while it waits and holds."""
        self._claims += 1
        try:
            return await super().acquire()
        except BaseException:
            self._claims -= 1
            raise

    def release(self) -> None:
        """Release the lock and drop the holder's claim."""
        super().release()
        self._claims -= 1


class ContextCache:
    """Recent messages per conversation: cache-aside, sliding TTL, LRU-capped.

    Each entry keeps the last ``max_messages`` messages (newest last). Reading or appending
    refreshes an entry's TTL and makes it the most recently used. Concurrent misses of one
    key share a single load; a loader error reaches every waiter and caches nothing.

    Per-key session locks (``lock``) serialize the turns of one session. They are separate
    from loading, so ``get`` and ``append`` may be called while holding one. A lock is
    dropped with its entry unless someone holds or awaits it; then it stays until it is
    idle and a later ``purge_expired`` removes it, so its holder is never left with a lock
    that newcomers no longer share.

    Args:
        loader: Reads a key's messages from the database, newest last.
        ttl_s: Seconds an entry lives after its last use.
        max_messages: Messages kept per entry (the oldest are dropped).
        max_entries: Entries kept; past it the least recently used is evicted.
        clock: The monotonic clock to read (the real one unless a test injects another).

    Raises:
        ValueError: If a limit is not positive.
    """

    def __init__(
        self,
        loader: Loader,
        *,
        ttl_s: float = 900.0,
        max_messages: int = 20,
        max_entries: int = 10_000,
        clock: Clock | None = None,
    ) -> None:
        if ttl_s <= 0 or max_messages < 1 or max_entries < 1:
            raise ValueError("ttl_s, max_messages and max_entries must be positive")
        self._loader = loader
        self._ttl_s = ttl_s
        self._max_messages = max_messages
        self._max_entries = max_entries
        self._clock = clock if clock is not None else MonotonicClock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._locks: dict[str, _SessionLock] = {}
        # The load whose result may be stored for a key; a replaced load's result is not.
        self._inflight: dict[str, asyncio.Task[_Loaded]] = {}
        # Strong references, so a load nobody awaits any more is not garbage-collected.
        self._load_tasks: set[asyncio.Task[_Loaded]] = set()
        self._stats = CacheStats()

    def __len__(self) -> int:
        """Entries held, expired ones included until they are touched or purged."""
        return len(self._entries)

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counters (changing it does not change the cache)."""
        return replace(self._stats)

    async def get(self, key: str) -> list[HistoryMessage]:
        """Return the key's recent messages, loading them on a miss.

        Args:
            key: A tenant-scoped conversation key.

        Returns:
            A new list, newest last, at most ``max_messages`` long.

        Raises:
            Exception: Whatever the loader raised; nothing is cached then.
        """
        entry = self._live_entry(key)
        if entry is not None:
            self._stats.hits += 1
            return list(entry.messages)
        self._stats.misses += 1
        loaded = await self._join_load(key)
        # An append may have landed between the load finishing and this waiter resuming.
        entry = self._entries.get(key)
        return list(entry.messages) if entry is not None else list(loaded)

    async def append(self, key: str, *messages: HistoryMessage) -> None:
        """Add messages that were just committed to the database.

        A cached entry gets the messages at its end (trimmed to ``max_messages``) and a
        fresh TTL. A key that is not cached is loaded instead: the write is committed, so
        the database already holds these messages, and adding them again would repeat them.
        A load already in flight may predate the write, so a new one replaces it.

        Args:
            key: A tenant-scoped conversation key.
            *messages: The committed messages, oldest first.

        Raises:
            Exception: Whatever the loader raised while loading a cold key.
        """
        entry = self._live_entry(key)
        if entry is None:
            self._inflight.pop(key, None)
            await self._join_load(key)
            return
        entry.messages.extend(messages)

    def invalidate(self, key: str) -> None:
        """Forget a key (e.g. after its conversation was deleted or rewritten).

        A load in flight for it still answers its waiters but is not stored.

        Args:
            key: A tenant-scoped conversation key.
        """
        self._inflight.pop(key, None)
        self._drop(key)

    def lock(self, key: str) -> asyncio.Lock:
        """Return the key's session lock, creating it on demand.

        Hold it across a turn's read-modify-write (``async with cache.lock(key):``) and
        acquire it right away: the cache may drop a lock nobody holds or awaits.

        Args:
            key: A tenant-scoped conversation key.

        Returns:
            The same lock for every caller while anyone holds or awaits it.
        """
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = _SessionLock()
        return lock

    def purge_expired(self) -> int:
        """Drop expired entries, and session locks left idle without an entry.

        Returns:
            How many entries were dropped.
        """
        now = self._clock.now()
        expired = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        for key in expired:
            self._drop(key)
        self._stats.expirations += len(expired)
        orphans = [k for k, lock in self._locks.items() if k not in self._entries and lock.idle]
        for key in orphans:
            del self._locks[key]
        return len(expired)

    async def run_cleanup(self, interval_s: float = 60.0) -> None:
        """Call ``purge_expired`` every ``interval_s`` seconds until cancelled.

        The runtime starts this as a task and cancels it on shutdown.

        Args:
            interval_s: Seconds between purges.

        Raises:
            ValueError: If ``interval_s`` is not positive.
        """
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        while True:
            await asyncio.sleep(interval_s)
            self.purge_expired()

    def _live_entry(self, key: str) -> _Entry | None:
        """The key's entry, touched (fresh TTL, most recent), or None if missing or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock.now()
        if entry.expires_at <= now:
            self._drop(key)
            self._stats.expirations += 1
            return None
        entry.expires_at = now + self._ttl_s
        self._entries.move_to_end(key)
        return entry

    async def _join_load(self, key: str) -> _Loaded:
        """Wait for the key's load, starting one if none is in flight."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key), name=f"context-load:{key}")
            self._inflight[key] = task
            self._load_tasks.add(task)
            task.add_done_callback(self._load_done)
        # Shielded: one waiter giving up must not cancel the load the others wait for.
        return await asyncio.shield(task)

    async def _load(self, key: str) -> _Loaded:
        """Run the loader; store the result unless this load was replaced meanwhile."""
        this_task = asyncio.current_task()
        self._stats.loads += 1
        try:
            loaded = tuple(await self._loader(key))[-self._max_messages :]
        finally:
            still_current = self._inflight.get(key) is this_task
            if still_current:
                del self._inflight[key]
        if still_current:
            self._store(key, loaded)
        return loaded

    def _load_done(self, task: asyncio.Task[_Loaded]) -> None:
        self._load_tasks.discard(task)
        # Mark the error as seen: if every waiter was cancelled, nobody else will.
        if not task.cancelled():
            task.exception()

    def _store(self, key: str, messages: _Loaded) -> None:
        expires_at = self._clock.now() + self._ttl_s
        self._entries[key] = _Entry(deque(messages, maxlen=self._max_messages), expires_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self._stats.evictions += 1

    def _drop(self, key: str) -> None:
        """Forget the entry, and its lock unless someone holds or awaits it."""
        self._entries.pop(key, None)
        lock = self._locks.get(key)
        if lock is not None and lock.idle:
            del self._locks[key]
