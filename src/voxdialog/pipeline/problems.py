"""Why a client's request to the session could not be done: typed, with no wire strings.

Session methods return one of these (or None when the request was done); the transport
turns them into its own error events (the Realtime edge: ``realtime/errors.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ItemNotFound:
    """No item ``item_id`` in the conversation (``param``: the request field that named it)."""

    item_id: str
    param: str
    #: Only an assistant message qualified (a truncate).
    assistant_only: bool = False


@dataclass(frozen=True, slots=True)
class AudioEndBeyondItem:
    """A truncate point past the end of the item's audio."""

    item_id: str
    audio_end_ms: int
    item_audio_ms: float


@dataclass(frozen=True, slots=True)
class CommitTooShort:
    """A commit with less audio buffered than the minimum."""

    buffered_ms: float
    minimum_ms: int


@dataclass(frozen=True, slots=True)
class ResponseAlreadyActive:
    """A response was asked for while ``response_id`` is still in progress."""

    response_id: str


@dataclass(frozen=True, slots=True)
class NoActiveResponse:
    """A cancel with no response in progress."""


Problem = (
    ItemNotFound | AudioEndBeyondItem | CommitTooShort | ResponseAlreadyActive | NoActiveResponse
)
