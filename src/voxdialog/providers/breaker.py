"""CircuitBreaker: stop calling a provider that keeps failing, then let one trial call through."""

from __future__ import annotations

from typing import Literal

from voxdialog.clock import Clock

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed -> open after ``failures`` failures in a row -> half-open after ``reset_s``.

    Half-open lets exactly one trial call through: its success closes the breaker, its failure
    opens it for another ``reset_s``. Pure bookkeeping; time comes from the injected clock.

    Args:
        failures: consecutive failures that open the breaker.
        reset_s: how long it stays open before a trial call is allowed.
        clock: the monotonic clock to read.

    Raises:
        ValueError: ``failures`` < 1 or ``reset_s`` <= 0.
    """

    def __init__(self, *, failures: int, reset_s: float, clock: Clock) -> None:
        if failures < 1:
            raise ValueError("a breaker needs failures >= 1")
        if reset_s <= 0:
            raise ValueError("a breaker needs reset_s > 0")
        self._failures = failures
        self._reset_s = reset_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_since: float | None = None

    @property
    def state(self) -> BreakerState:
        """``"closed"``, ``"open"`` or ``"half_open"`` (open for at least ``reset_s``)."""
        if self._opened_at is None:
            return "closed"
        if self._clock.now() - self._opened_at >= self._reset_s:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._consecutive

    def would_allow(self) -> bool:
        """Whether ``allow()`` would say yes now, without taking the half-open trial."""
        state = self.state
        return state == "closed" or (state == "half_open" and not self._trial_taken())

    def allow(self) -> bool:
        """May a call go out now? In half-open state, the first caller takes the one trial."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._trial_taken():
            return False
        self._trial_since = self._clock.now()
        return True

    def release(self) -> None:
        """The allowed call ended without a verdict (it was cancelled): free the trial."""
        self._trial_since = None

    def record_success(self) -> None:
        """A call succeeded: close the breaker and forget the failures."""
        self._consecutive = 0
        self._opened_at = None
        self._trial_since = None

    def record_failure(self) -> None:
        """A call failed: count it, and open (or re-open) the breaker when due."""
        self._consecutive += 1
        self._trial_since = None
        state = self.state
        if state == "half_open" or (state == "closed" and self._consecutive >= self._failures):
            self._opened_at = self._clock.now()

    def _trial_taken(self) -> bool:
        # A trial whose caller never reported (a bug, or a lost task) expires after reset_s, so
        # the provider cannot stay locked out for good.
        return (
            self._trial_since is not None and self._clock.now() - self._trial_since < self._reset_s
        )
