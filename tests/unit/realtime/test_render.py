"""Pipeline events render into the GA server events, in the hosted service's order."""

from __future__ import annotations

from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.wire import parse_ga_format
from voxdialog.pipeline.conversation import Item
from voxdialog.pipeline.events import (
    FunctionCallAdded,
    InputCommitted,
    LLMUnavailable,
    ResponseEnded,
    ResponseStarted,
    ResponseText,
    TranscriptionCompleted,
    TurnFailed,
)
from voxdialog.realtime.audio_out import OutputTrack, OutputTracks
from voxdialog.realtime.render import ResponseRenderer


def renderer() -> ResponseRenderer:
    return ResponseRenderer(
        conversation_id="conv_1", output_format={"type": "audio/pcm", "rate": 24000}, voice="alloy"
    )


def types(events: list[dict[str, object]]) -> list[object]:
    return [e["type"] for e in events]


def test_an_audio_response_opens_its_message_with_the_first_output() -> None:
    r = renderer()
    reply = Item(id="item_r", role="assistant", kind="output_audio", status="in_progress", text="")
    out = r.render(ResponseStarted("resp_1", reply.snapshot(), audio=True))
    assert types(out) == ["response.created"]
    out = r.render(ResponseText("resp_1", "item_r", "Hello."))
    assert types(out) == [
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio_transcript.delta",
    ]
    out = r.audio_delta("resp_1", "item_r", b"\x01\x00")
    assert types(out) == ["response.output_audio.delta"]
    assert out[0]["delta"] == "AQA="
    reply.text, reply.status = "Hello.", "completed"
    out = r.render(ResponseEnded("resp_1", reply.snapshot(), "completed"))
    assert types(out) == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
    ]
    done = out[-1]["response"]
    assert isinstance(done, dict)
    assert (done["status"], done["output"][0]["content"][0]["transcript"]) == (
        "completed",
        "Hello.",
    )


def test_tool_calls_take_output_indexes_in_order() -> None:
    r = renderer()
    reply = Item(id="item_r", role="assistant", kind="output_text", status="in_progress", text="")
    call = Item(
        id="item_c",
        type="function_call",
        role="assistant",
        kind="function_call",
        call_id="call_1",
        name="lookup",
        arguments="{}",
    )
    r.render(ResponseStarted("resp_1", reply.snapshot(), audio=False))
    out = r.render(FunctionCallAdded("resp_1", call.snapshot()))
    assert out[0]["output_index"] == 0
    assert types(out)[-1] == "response.output_item.done"
    out = r.render(ResponseText("resp_1", "item_r", "Done"))
    assert out[0]["output_index"] == 1
    assert types(out)[-1] == "response.output_text.delta"
    reply.text, reply.status = "Done", "completed"
    ended = r.render(
        ResponseEnded(
            "resp_1",
            reply.snapshot(),
            "cancelled",
            reason="turn_detected",
            calls=(call.snapshot(),),
        )
    )
    response = ended[-1]["response"]
    assert isinstance(response, dict)
    assert [o["id"] for o in response["output"]] == ["item_c", "item_r"]
    assert response["status_details"] == {"type": "cancelled", "reason": "turn_detected"}


def test_input_events_and_failures() -> None:
    r = renderer()
    user = Item(id="item_u", kind="input_audio", audio=b"\x00\x00", audio_ms=1.0)
    out = r.render(InputCommitted(user.snapshot(), "item_0"))
    assert types(out) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert out[0]["previous_item_id"] == "item_0"
    out = r.render(TranscriptionCompleted("item_u", "", 1.5))
    assert types(out) == ["conversation.item.input_audio_transcription.completed"]
    unavailable = r.render(LLMUnavailable("resp_1", "upstream 503"))
    assert unavailable[0]["error"]["code"] == "llm_unavailable"  # type: ignore[index]
    crashed = r.render(TurnFailed("The server hit an error."))
    assert crashed[0]["error"]["type"] == "server_error"  # type: ignore[index]


def test_events_carry_snapshots_that_later_changes_do_not_touch() -> None:
    item = Item(id="item_u", text="before")
    event = InputCommitted(item.snapshot(), None)
    item.text = "after"
    item.timings["stt_wait_ms"] = 1.0
    assert event.item.text == "before"
    assert dict(event.item.timings) == {}


def test_each_response_keeps_the_format_it_started_with() -> None:
    tracks = OutputTracks()
    pcm24 = parse_ga_format({"type": "audio/pcm", "rate": 24000})
    ulaw = parse_ga_format({"type": "audio/pcmu"})
    second = AudioChunk(b"\x00\x10" * 22_050, 22_050)  # 1 s
    first = tracks.deltas("resp_1", second, pcm24)
    later = tracks.deltas("resp_1", second, ulaw)  # the client changed format meanwhile
    assert all(len(d) <= 24 * 2 * 500 for d in first + later)
    assert sum(map(len, first + later)) + len(tracks.close("resp_1")) == 2 * 24_000 * 2
    assert tracks.close("resp_1") == b""
    other = tracks.deltas("resp_2", second, ulaw)
    assert all(len(d) <= 8 * 500 for d in other)


def test_a_track_cuts_deltas_at_half_a_second() -> None:
    track = OutputTrack(parse_ga_format({"type": "audio/pcm", "rate": 24000}), source_rate=24_000)
    deltas = track.deltas(AudioChunk(b"\x00\x01" * 36_000, 24_000))  # 1.5 s
    assert [len(d) for d in deltas][:2] == [24_000, 24_000]
    assert track.deltas(AudioChunk(b"", 24_000)) == [b""]
