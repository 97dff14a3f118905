"""Event-loop lag: how late the loop wakes a coroutine that asked to sleep.

A blocked loop (CPU-bound work or a blocking call on the loop thread) delays every session's
audio at once; this is the cheapest way to see it happen.
"""

from __future__ import annotations

import asyncio

from voxdialog.observability.metrics import LOOP_LAG, LOOP_LAG_LAST


class LoopLoad:
    """The loop's recent lag, smoothed: how near the process is to saturation.

    Every session shares the loop, so a loop that wakes sleepers late delays every session's
    audio; a new session is refused before that delay grows (``limits.admission_max_loop_lag_ms``).

    Args:
        smoothing: Weight of the newest sample (0-1]; 0.3 at one sample per 0.5 s remembers
            about two seconds.
    """

    def __init__(self, *, smoothing: float = 0.3) -> None:
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]")
        self._smoothing = smoothing
        self.lag_ms = 0.0

    def record(self, lag_s: float) -> None:
        """Take one sample of the loop's lag, in seconds."""
        self.lag_ms += self._smoothing * (lag_s * 1000 - self.lag_ms)


async def sample_loop_lag(interval_s: float = 0.5, load: LoopLoad | None = None) -> None:
    """Measure the running loop's lag every ``interval_s`` seconds, until cancelled.

    Each sample sleeps ``interval_s`` and records the oversleep in
    ``voxdialog_event_loop_lag_seconds`` (histogram) and
    ``voxdialog_event_loop_lag_last_seconds`` (gauge). Start it as a task next to the server
    and cancel it at shutdown.

    Args:
        interval_s: Time between samples, in seconds.
        load: Also fed with every sample (admission control reads it).

    Raises:
        ValueError: ``interval_s`` is not positive.
    """
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        lag = max(0.0, loop.time() - asked)
        LOOP_LAG.observe(lag)
        LOOP_LAG_LAST.set(lag)
        if load is not None:
            load.record(lag)
