"""How fast one Realtime client may send: control events per minute, audio per second.

Two token buckets per connection (OWASP WebSocket cheat sheet: rate-limit messages, give
audio a budget of its own). A client over either budget is closed with 1008 (reliability.md
R12): a flood must not cost the process's other sessions their turns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from voxdialog.settings import LimitSettings

APPEND = "input_audio_buffer.append"


@dataclass(slots=True)
class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.stamp = self.clock()

    def take(self, amount: float = 1.0) -> bool:
        """Spend ``amount`` tokens if there are that many; False (nothing spent) if not."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True


@dataclass(frozen=True, slots=True)
class Overrun:
    """A client over a budget: the error code and message it gets, and the close code."""

    code: str
    message: str
    close_code: int


class InboundBudget:
    """One connection's budgets for client events."""

    def __init__(
        self, limits: LimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limits = limits
        self._control = TokenBucket(
            limits.ws_control_per_min / 60.0, limits.ws_control_burst, clock
        )
        self._audio = TokenBucket(limits.ws_audio_rate, limits.ws_audio_burst_s, clock)

    def control(self, size: int = 0) -> Overrun | None:
        """Charge one event other than an append, ``size`` characters long (0: unknown)."""
        limit = self._limits.ws_max_control_bytes
        if size > limit:
            message = f"Events other than {APPEND} may be at most {limit} bytes."
            return Overrun("message_too_large", message, 1009)
        if not self._control.take():
            rate = self._limits.ws_control_per_min
            message = f"More than {rate:g} events a minute (appends aside); closing."
            return Overrun("rate_limit_exceeded", message, 1008)
        return None

    def audio(self, audio_b64: object, bytes_per_ms: int) -> Overrun | None:
        """Charge an append's seconds of audio (a malformed one is the parser's to refuse)."""
        if not isinstance(audio_b64, str):
            return None
        if not self._audio.take(append_seconds(audio_b64, bytes_per_ms)):
            rate = self._limits.ws_audio_rate
            message = f"Audio is arriving faster than {rate:g}x real time; closing."
            return Overrun("rate_limit_exceeded", message, 1008)
        return None


def append_seconds(audio_b64: str, bytes_per_ms: int) -> float:
    """Seconds of audio a base64 append holds (estimated before decoding it)."""
    return len(audio_b64) * 3 / 4 / max(1, bytes_per_ms) / 1000.0
