"""``session.update``'s ``model``: any name the Realtime handshake accepts is the session's
model (no change); another name is refused. One rule, ``voxdialog.settings.accepts_model``."""

from __future__ import annotations

import pytest

from tests.unit.realtime.conftest import Edge
from voxdialog.realtime.client_events import parse_client_event
from voxdialog.realtime.commands import apply
from voxdialog.realtime.errors import CommandError
from voxdialog.realtime.session_object import default_session, merge_session
from voxdialog.settings import TurnSettings, accepts_model

ACCEPTED = [
    "local-voice",
    "default",
    "voxdialog",
    "gpt-realtime",
    "gpt-realtime-mini",
    "gpt-realtime-2025-08-28",
    "gpt-4o-realtime-preview",
    "gpt-4o-realtime-preview-2024-12-17",
    "gpt-4o-mini-realtime-preview",
]
REFUSED = ["gpt-9", "whisper-1", "gpt-4o", "my-gpt-realtime", "gpt-realtime ", "", "x" * 200]


@pytest.mark.parametrize("name", ACCEPTED)
def test_the_served_name_its_aliases_and_openai_realtime_ids_are_accepted(name: str) -> None:
    assert accepts_model(name, "local-voice")


@pytest.mark.parametrize("name", [*REFUSED, None, 5])
def test_other_names_are_refused(name: object) -> None:
    assert not accepts_model(name, "local-voice")


def test_the_served_name_is_the_configured_one() -> None:
    assert accepts_model("my-voice", "my-voice")
    assert not accepts_model("local-voice", "my-voice")


async def test_the_agents_sdk_first_update_with_gpt_realtime_is_applied(edge: Edge) -> None:
    # openai-agents' RealtimeRunner sends its first session.update with model "gpt-realtime".
    out = await apply(
        edge.state,
        parse_client_event(
            {
                "type": "session.update",
                "session": {"type": "realtime", "model": "gpt-realtime", "instructions": "Hi."},
            }
        ),
    )
    assert [e["type"] for e in out] == ["session.updated"]
    session = out[0]["session"]
    assert isinstance(session, dict)
    assert session["model"] == "local-voice"  # the same session model: no change
    assert edge.state.session["instructions"] == "Hi."


@pytest.mark.parametrize("name", ACCEPTED)
async def test_every_accepted_name_is_no_change(edge: Edge, name: str) -> None:
    event = parse_client_event({"type": "session.update", "session": {"model": name}})
    out = await apply(edge.state, event)
    assert [e["type"] for e in out] == ["session.updated"]
    assert edge.state.session["model"] == "local-voice"


@pytest.mark.parametrize("name", ["gpt-9", "whisper-1", 5])
async def test_another_model_is_still_refused(edge: Edge, name: object) -> None:
    before = dict(edge.state.session)
    event = parse_client_event({"type": "session.update", "session": {"model": name}})
    with pytest.raises(CommandError) as caught:
        await apply(edge.state, event)
    assert (caught.value.code, caught.value.param) == ("invalid_value", "session.model")
    assert "Cannot change the model" in str(caught.value)
    assert edge.state.session == before


def test_a_session_opened_as_gpt_realtime_accepts_it_again() -> None:
    session = default_session(
        session_id="s", model="gpt-realtime", turns=TurnSettings(), expires_at=0, kind="realtime"
    )
    merged = merge_session(session, {"model": "gpt-realtime"})
    assert merged["model"] == "gpt-realtime"
