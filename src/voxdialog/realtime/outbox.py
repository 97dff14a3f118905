"""What a socket still has to send: server events bounded in bytes and in seconds of audio.

Counting events is not enough: one ``conversation.item.retrieve`` answer holds a whole item's
audio, so a client that asks and never reads made a 1024-event queue hold hundreds of MB.
Here a producer waits (backpressure on its own session only) once the queue holds
``max_bytes`` or ``max_audio_s`` of reply audio; an event bigger than the bound still goes out,
alone. Events are serialized when queued, so their size is known and the writer only sends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One serialized server event."""

    text: str
    type: str
    audio_s: float = 0.0


class Outbox:
    """A bounded FIFO of serialized events between the producers and the socket writer.

    Args:
        max_bytes: Characters of JSON queued at most (one bigger event may wait alone).
        max_audio_s: Seconds of reply audio queued at most.
    """

    def __init__(self, *, max_bytes: int, max_audio_s: float) -> None:
        self._max_bytes = max_bytes
        self._max_audio_s = max_audio_s
        self._queue: deque[Outgoing] = deque()
        self._bytes = 0
        self._audio_s = 0.0
        self._closed = False
        self._ready = asyncio.Event()  # something to send, or closed
        self._room = asyncio.Event()  # something was taken out, or closed

    @property
    def queued_bytes(self) -> int:
        """Characters of JSON waiting."""
        return self._bytes

    @property
    def queued_audio_s(self) -> float:
        """Seconds of reply audio waiting."""
        return self._audio_s

    @property
    def closed(self) -> bool:
        """No more events are taken."""
        return self._closed

    def _fits(self, item: Outgoing) -> bool:
        if not self._queue:
            return True
        return (
            self._bytes + len(item.text) <= self._max_bytes
            and self._audio_s + item.audio_s <= self._max_audio_s + 1e-9
        )

    async def put(self, item: Outgoing) -> bool:
        """Queue ``item``, waiting while the queue is full; False if the outbox is closed."""
        while not self._closed and not self._fits(item):
            self._room.clear()
            await self._room.wait()
        if self._closed:
            return False
        self._queue.append(item)
        self._bytes += len(item.text)
        self._audio_s += item.audio_s
        self._ready.set()
        return True

    async def get(self) -> Outgoing | None:
        """The next event; None once the outbox is closed and empty."""
        while not self._queue:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        item = self._queue.popleft()
        self._bytes -= len(item.text)
        self._audio_s = max(0.0, self._audio_s - item.audio_s) if self._queue else 0.0
        self._room.set()
        return item

    def close(self) -> None:
        """Take no more events; what is queued is still handed to the writer."""
        self._closed = True
        self._ready.set()
        self._room.set()

    def discard(self) -> list[Outgoing]:
        """Close and empty the outbox (the client is gone); returns what was never sent."""
        self.close()
        left = list(self._queue)
        self._queue.clear()
        self._bytes, self._audio_s = 0, 0.0
        return left
