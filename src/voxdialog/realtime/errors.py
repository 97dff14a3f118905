"""The Realtime ``error`` event, and what each pipeline problem is called on the wire.

The codes and messages are the hosted service's (openai-compat.md §5.2): clients treat some
of them (``input_audio_buffer_commit_empty``, ``conversation_already_has_active_response``,
``response_cancel_not_active``) as benign races, so they must be exactly these.
"""

from __future__ import annotations

from typing import Any

from voxdialog.pipeline.problems import (
    AudioEndBeyondItem,
    CommitTooShort,
    ItemNotFound,
    NoActiveResponse,
    Problem,
    ResponseAlreadyActive,
)

Event = dict[str, Any]


class CommandError(ValueError):
    """A client event that cannot be applied; becomes an ``error`` event (nothing changed)."""

    def __init__(self, code: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def error_event(
    code: str,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    event_id: str | None = None,
) -> Event:
    """An ``error`` server event."""
    return {
        "type": "error",
        "error": {
            "type": type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        },
    }


def problem_error(problem: Problem) -> CommandError:
    """The error a pipeline problem is reported as."""
    match problem:
        case ItemNotFound(item_id=item_id, param=param, assistant_only=True):
            return CommandError(
                "item_not_found", f"Assistant item '{item_id}' not found.", param=param
            )
        case ItemNotFound(item_id=item_id, param=param):
            return CommandError(
                "item_not_found", f"Item with id '{item_id}' not found.", param=param
            )
        case AudioEndBeyondItem(audio_end_ms=end, item_audio_ms=length):
            return CommandError(
                "invalid_value",
                f"audio_end_ms {end} is beyond the item's {int(length)}ms of audio.",
                param="audio_end_ms",
            )
        case CommitTooShort(buffered_ms=buffered, minimum_ms=minimum):
            return CommandError(
                "input_audio_buffer_commit_empty",
                f"Expected at least {minimum}ms of audio, but buffer only has "
                f"{buffered:.2f}ms of audio.",
            )
        case ResponseAlreadyActive(response_id=response_id):
            return CommandError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {response_id}. "
                "Wait until the response is finished before creating a new one.",
            )
        case NoActiveResponse():
            return CommandError(
                "response_cancel_not_active", "Cancellation failed: no active response found."
            )


def raise_problem(problem: Problem | None) -> None:
    """Raise the problem's CommandError, if there is one."""
    if problem is not None:
        raise problem_error(problem)
