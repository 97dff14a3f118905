"""The errors a provider chain raises, and how it names the ones its providers raised."""

from __future__ import annotations

from collections.abc import Sequence

from voxdialog.providers.base import ProviderError, ProviderTimeout, ProviderUnavailable


class ChainExhausted(ProviderError):
    """Every provider of a chain failed (or was skipped by its open breaker).

    Attributes:
        errors: ``(provider name, error)`` for each provider, in chain order.
    """

    def __init__(self, chain: str, errors: Sequence[tuple[str, ProviderError]]) -> None:
        summary = ", ".join(f"{name}: {describe(error)}" for name, error in errors)
        super().__init__(f"every provider of {chain} failed ({summary})", retryable=False)
        self.errors = tuple(errors)


def as_provider_error(error: Exception, provider: str, timeout_s: float) -> ProviderError:
    """``error`` as a ``ProviderError``: a timeout, a lost connection, or a non-retryable bug."""
    if isinstance(error, ProviderError):
        return error
    if isinstance(error, TimeoutError):
        return ProviderTimeout(f"{provider} gave no answer within {timeout_s:g} s")
    if isinstance(error, ConnectionError):
        return ProviderUnavailable(f"{provider}: {type(error).__name__}")
    return ProviderError(f"{provider} raised {type(error).__name__}", retryable=False)


def describe(error: ProviderError) -> str:
    """A short line for health rows and summaries: kind, status and the start of the message."""
    status = f" {error.status}" if error.status is not None else ""
    return f"{type(error).__name__}{status}: {str(error)[:200]}"
