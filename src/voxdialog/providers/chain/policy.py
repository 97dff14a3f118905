"""CallPolicy: how a provider chain calls each of its providers."""

from __future__ import annotations

from dataclasses import dataclass

from voxdialog.settings import ChainSettings


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How a chain calls each provider (defaults match ``ChainSettings``).

    Attributes:
        attempt_timeout_s: limit per attempt; for a stream, until its first piece of content.
        retries: extra attempts on the same provider after a retryable error.
        backoff_s: first retry delay; it doubles per retry, with full jitter.
        breaker_failures: consecutive failures that open a provider's breaker.
        breaker_reset_s: how long a breaker stays open before a probe or trial call.
        retry_after_cap_s: the longest ``Retry-After`` honoured; a longer one moves on instead.
        min_retry_interval_s: attempts on one failing provider start at least this far apart.
    """

    attempt_timeout_s: float = 5.0
    retries: int = 0
    backoff_s: float = 0.25
    breaker_failures: int = 3
    breaker_reset_s: float = 15.0
    retry_after_cap_s: float = 5.0
    min_retry_interval_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: ChainSettings) -> CallPolicy:
        """The policy a ``ChainSettings`` group describes."""
        return cls(
            attempt_timeout_s=settings.attempt_timeout_s,
            retries=settings.retries,
            backoff_s=settings.backoff_s,
            breaker_failures=settings.breaker_failures,
            breaker_reset_s=settings.breaker_reset_s,
        )
