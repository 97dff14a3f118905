"""CircuitBreaker: closed -> open -> half-open (one trial) -> closed or open again."""

from __future__ import annotations

import pytest

from voxdialog.providers.breaker import CircuitBreaker
from voxdialog.testing.clock import FakeClock


def _breaker(clock: FakeClock, *, failures: int = 3, reset_s: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(failures=failures, reset_s=reset_s, clock=clock)


def _state(breaker: CircuitBreaker) -> str:
    # Through a plain str, so mypy does not narrow the property between two readings.
    return breaker.state


def test_a_new_breaker_is_closed_and_allows_calls() -> None:
    breaker = _breaker(FakeClock())

    assert _state(breaker) == "closed"
    assert breaker.allow()
    assert breaker.allow()


def test_the_breaker_opens_after_that_many_consecutive_failures() -> None:
    breaker = _breaker(FakeClock(), failures=3)

    breaker.record_failure()
    breaker.record_failure()
    assert _state(breaker) == "closed"
    breaker.record_failure()

    assert _state(breaker) == "open"
    assert breaker.consecutive_failures == 3
    assert not breaker.allow()
    assert not breaker.would_allow()


def test_a_success_between_failures_keeps_the_breaker_closed() -> None:
    breaker = _breaker(FakeClock(), failures=2)

    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()

    assert _state(breaker) == "closed"
    assert breaker.consecutive_failures == 1


def test_after_reset_s_the_breaker_is_half_open_and_lets_exactly_one_trial_through() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures=1, reset_s=10.0)
    breaker.record_failure()

    clock.advance(9.9)
    assert _state(breaker) == "open"
    assert not breaker.allow()
    clock.advance(0.1)

    assert _state(breaker) == "half_open"
    assert breaker.would_allow()
    assert breaker.allow()
    assert not breaker.would_allow()
    assert not breaker.allow()


def test_a_successful_trial_closes_the_breaker() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures=1, reset_s=5.0)
    breaker.record_failure()
    clock.advance(5.0)
    assert breaker.allow()

    breaker.record_success()

    assert _state(breaker) == "closed"
    assert breaker.consecutive_failures == 0
    assert breaker.allow()
    assert breaker.allow()


def test_a_failed_trial_opens_the_breaker_for_another_reset_period() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures=2, reset_s=5.0)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(5.0)
    assert breaker.allow()

    breaker.record_failure()

    assert _state(breaker) == "open"
    clock.advance(4.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert _state(breaker) == "half_open"
    assert breaker.allow()


def test_releasing_a_cancelled_trial_lets_the_next_caller_try() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures=1, reset_s=5.0)
    breaker.record_failure()
    clock.advance(5.0)
    assert breaker.allow()

    breaker.release()

    assert _state(breaker) == "half_open"
    assert breaker.allow()


def test_a_trial_that_never_reports_expires_after_reset_s() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures=1, reset_s=5.0)
    breaker.record_failure()
    clock.advance(5.0)
    assert breaker.allow()

    clock.advance(4.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()


def test_late_failures_of_calls_started_before_opening_do_not_extend_the_open_period() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, failures=1, reset_s=5.0)
    breaker.record_failure()
    clock.advance(3.0)

    breaker.record_failure()
    clock.advance(2.0)

    assert _state(breaker) == "half_open"


@pytest.mark.parametrize(("failures", "reset_s"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_nonsensical_limits_are_refused(failures: int, reset_s: float) -> None:
    with pytest.raises(ValueError, match="breaker needs"):
        CircuitBreaker(failures=failures, reset_s=reset_s, clock=FakeClock())
