"""Single-use bookkeeping for WebSocket tickets: a ticket's ``jti`` may be redeemed once.

In memory for one process; in Redis (``SET NX PX``) when several processes share the load,
so a ticket redeemed on one node is spent on all of them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from voxdialog.clock import Clock, MonotonicClock

_MAX_REMEMBERED = 100_000


class SpentTickets(Protocol):
    """Remembers redeemed ticket ids until they would have expired anyway."""

    async def spend(self, jti: str, ttl_s: float) -> bool:
        """Mark ``jti`` spent; True only for the first call with that id."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemorySpentTickets:
    """Per-process spent-ticket set with expiry (bounded)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock if clock is not None else MonotonicClock()
        self._spent: OrderedDict[str, float] = OrderedDict()

    async def spend(self, jti: str, ttl_s: float) -> bool:
        """Mark ``jti`` spent; True the first time."""
        now = self._clock.now()
        self._purge(now)
        if jti in self._spent:
            return False
        self._spent[jti] = now + ttl_s
        return True

    def _purge(self, now: float) -> None:
        # Entries are inserted in time order with one TTL, so expired ones sit at the front.
        while self._spent and (
            next(iter(self._spent.values())) <= now or len(self._spent) > _MAX_REMEMBERED
        ):
            self._spent.popitem(last=False)

    async def aclose(self) -> None:
        """Nothing to release."""


class RedisSpentTickets:
    """Spent-ticket set shared through Redis."""

    def __init__(self, url: str, *, prefix: str = "voxdialog:ticket:") -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = prefix

    async def spend(self, jti: str, ttl_s: float) -> bool:
        """Mark ``jti`` spent; True the first time. Fails closed when Redis is down."""
        try:
            created = await self._redis.set(
                self._prefix + jti, b"1", nx=True, px=max(1, int(ttl_s * 1000))
            )
        except RedisError:
            return False
        return bool(created)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def make_spent_tickets(redis_url: str | None) -> SpentTickets:
    """Redis-backed when a URL is configured, else in memory."""
    return RedisSpentTickets(redis_url) if redis_url else MemorySpentTickets()
