"""PrioritySlots: a semaphore whose waiters go in order of urgency, then of arrival.

A local model runs a bounded number of jobs at once. When every slot is taken, the next free
one goes to the most urgent waiter (a live turn before a speculative guess before an upload),
not to whoever asked first. A waiter that is cancelled leaves the queue at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class PrioritySlots:
    """``slots`` jobs at a time; ``acquire(priority)`` waits, lower priority values first.

    Bound to the event loop it is first used on (like any asyncio primitive).
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self._free = slots
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def locked(self) -> bool:
        """Whether every slot is taken."""
        return self._free == 0

    @property
    def waiting(self) -> int:
        """How many acquirers are queued."""
        return sum(1 for _, _, future in self._waiters if not future.done())

    async def acquire(self, priority: int) -> None:
        """Take a slot, waiting behind more urgent (and earlier equally urgent) waiters."""
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back: to the most urgent waiter, if any."""
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
