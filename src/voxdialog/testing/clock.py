"""A clock that moves only when a test says so."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that advance only through ``advance``.

    Structurally a ``voxdialog.clock.Clock``, so code under test takes it in place of the real
    ``MonotonicClock``.

    Args:
        start: the first reading.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        """The current reading in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward.

        Raises:
            ValueError: ``seconds`` is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        self._now += seconds
