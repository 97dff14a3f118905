"""Errors raised by the store; each says whether trying again can help."""

from __future__ import annotations


class StoreError(Exception):
    """A store operation was refused.

    Attributes:
        retryable: Whether the same call may succeed later unchanged.
    """

    retryable: bool = False

    def __str__(self) -> str:
        # KeyError subclasses below would otherwise print the repr of the message.
        return str(self.args[0]) if self.args else ""


class UnknownSessionError(StoreError, LookupError):
    """A message or command names a voice session that was never started."""


class SessionConflictError(StoreError):
    """A voice session id is already used by another user."""


class UnknownProjectError(StoreError, KeyError):
    """A task names a project that is not in the caller's scope.

    A `KeyError`, as the in-memory store raises, so callers handle both stores alike.
    """
