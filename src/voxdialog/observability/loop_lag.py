"""Event-loop lag: how late the loop wakes a coroutine that asked to sleep.

A blocked loop (CPU-bound work or a blocking call on the loop thread) delays every session's
audio at once; this is the cheapest way to see it happen.
"""

from __future__ import annotations

import asyncio

from voxdialog.observability.metrics import LOOP_LAG, LOOP_LAG_LAST


async def sample_loop_lag(interval_s: float = 0.5) -> None:
    """Measure the running loop's lag every ``interval_s`` seconds, until cancelled.

    Each sample sleeps ``interval_s`` and records the oversleep in
    ``voxdialog_event_loop_lag_seconds`` (histogram) and
    ``voxdialog_event_loop_lag_last_seconds`` (gauge). Start it as a task next to the server
    and cancel it at shutdown.

    Args:
        interval_s: Time between samples, in seconds.

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
