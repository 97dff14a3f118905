"""Client events parse into typed models; malformed ones get the hosted service's codes."""

from __future__ import annotations

from typing import Any

import pytest

from voxdialog.realtime.client_events import (
    AudioAppend,
    ItemCreate,
    ItemTruncate,
    ResponseCreate,
    SessionUpdate,
    parse_client_event,
)
from voxdialog.realtime.errors import CommandError


def refusal(raw: dict[str, Any]) -> tuple[str, str | None]:
    with pytest.raises(CommandError) as caught:
        parse_client_event(raw)
    return caught.value.code, caught.value.param


def test_each_event_type_parses_into_its_model() -> None:
    update = parse_client_event({"type": "session.update", "session": {"instructions": "Hi"}})
    assert isinstance(update, SessionUpdate)
    assert update.session == {"instructions": "Hi"}
    append = parse_client_event(
        {"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "e1"}
    )
    assert isinstance(append, AudioAppend)
    assert (append.audio, append.event_id) == ("AAAA", "e1")
    truncate = parse_client_event(
        {"type": "conversation.item.truncate", "item_id": "i", "audio_end_ms": 5}
    )
    assert isinstance(truncate, ItemTruncate)
    assert (truncate.item_id, truncate.content_index, truncate.audio_end_ms) == ("i", 0, 5)
    create = parse_client_event({"type": "conversation.item.create", "item": {"type": "message"}})
    assert isinstance(create, ItemCreate)
    assert create.previous_item_id is None


def test_unknown_event_types_are_an_invalid_value_of_type() -> None:
    with pytest.raises(CommandError) as caught:
        parse_client_event({"type": "no.such.event"})
    assert (caught.value.code, caught.value.param) == ("invalid_value", "type")
    assert "no.such.event" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"type": "conversation.item.truncate", "item_id": "i"},
            ("missing_required_parameter", "audio_end_ms"),
        ),
        ({"type": "conversation.item.delete"}, ("missing_required_parameter", "item_id")),
        ({"type": "conversation.item.create"}, ("missing_required_parameter", "item")),
        ({"type": "input_audio_buffer.append"}, ("missing_required_parameter", "audio")),
        ({"type": "input_audio_buffer.append", "audio": ""}, ("invalid_value", "audio")),
        ({"type": "input_audio_buffer.append", "audio": 12}, ("invalid_value", "audio")),
        (
            {"type": "conversation.item.truncate", "item_id": "i", "audio_end_ms": True},
            ("invalid_value", "audio_end_ms"),
        ),
        (
            {"type": "conversation.item.truncate", "item_id": "i", "audio_end_ms": "5"},
            ("invalid_value", "audio_end_ms"),
        ),
        ({"type": "session.update", "session": [1]}, ("invalid_value", "session")),
        (
            {"type": "response.create", "response": {"instructions": 3}},
            ("invalid_value", "response.instructions"),
        ),
    ],
)
def test_malformed_fields_name_the_parameter(
    raw: dict[str, Any], expected: tuple[str, str | None]
) -> None:
    assert refusal(raw) == expected


def test_null_patches_mean_no_changes_and_unknown_fields_are_ignored() -> None:
    update = parse_client_event({"type": "session.update", "session": None})
    assert isinstance(update, SessionUpdate)
    assert update.session == {}
    create = parse_client_event(
        {
            "type": "response.create",
            "response": {"audio": {"output": {"voice": "nova"}}, "metadata": {"a": 1}},
            "future_field": True,
        }
    )
    assert isinstance(create, ResponseCreate)
    assert create.response.voice == "nova"
    assert create.response.conversation == "auto"


def test_parsed_events_cannot_be_changed() -> None:
    update = parse_client_event({"type": "session.update"})
    with pytest.raises(ValueError, match="frozen"):
        update.event_id = "x"  # type: ignore[misc]
