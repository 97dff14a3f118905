"""Pipeline problems are reported with exactly the hosted service's codes and messages."""

from __future__ import annotations

import pytest

from voxdialog.pipeline.problems import (
    AudioEndBeyondItem,
    CommitTooShort,
    ItemNotFound,
    NoActiveResponse,
    Problem,
    ResponseAlreadyActive,
)
from voxdialog.realtime.errors import error_event, problem_error, raise_problem


@pytest.mark.parametrize(
    ("problem", "code", "param", "words"),
    [
        (ItemNotFound("it_1", "item_id"), "item_not_found", "item_id", "Item with id 'it_1'"),
        (
            ItemNotFound("it_1", "item_id", assistant_only=True),
            "item_not_found",
            "item_id",
            "Assistant item 'it_1'",
        ),
        (
            ItemNotFound("p", "previous_item_id"),
            "item_not_found",
            "previous_item_id",
            "'p' not found",
        ),
        (AudioEndBeyondItem("it", 900, 500.4), "invalid_value", "audio_end_ms", "500ms"),
        (CommitTooShort(50.0, 100), "input_audio_buffer_commit_empty", None, "50.00ms"),
        (
            ResponseAlreadyActive("resp_9"),
            "conversation_already_has_active_response",
            None,
            "resp_9",
        ),
        (NoActiveResponse(), "response_cancel_not_active", None, "no active response"),
    ],
)
def test_each_problem_has_its_code(
    problem: Problem, code: str, param: str | None, words: str
) -> None:
    error = problem_error(problem)
    assert (error.code, error.param) == (code, param)
    assert words in str(error)


def test_no_problem_raises_nothing() -> None:
    raise_problem(None)
    with pytest.raises(ValueError, match="no active response"):
        raise_problem(NoActiveResponse())


def test_error_events_echo_the_client_event_id() -> None:
    event = error_event("invalid_value", "bad", param="type", event_id="evt_7")
    assert event == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "bad",
            "param": "type",
            "event_id": "evt_7",
        },
    }
