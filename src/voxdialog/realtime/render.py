"""Turns pipeline SessionEvents into GA Realtime server events (plain dicts).

Input-side events render on their own (``input_events``); response events need what came
before in the same response (which output index the message has, which tool calls were made),
which ``ResponseRenderer`` keeps.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from voxdialog.pipeline.conversation import ItemView
from voxdialog.pipeline.events import (
    FunctionCallAdded,
    InputCleared,
    InputCommitted,
    ItemAdded,
    ItemDeleted,
    ItemTruncated,
    LLMUnavailable,
    ResponseEnded,
    ResponseStarted,
    ResponseText,
    SessionEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionFailed,
    TranscriptionPartial,
    TurnFailed,
)
from voxdialog.realtime.errors import error_event
from voxdialog.realtime.items import render_item

Event = dict[str, Any]
_ZERO_USAGE = {
    "total_tokens": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "input_token_details": {"text_tokens": 0, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 0, "audio_tokens": 0},
}
_LLM_UNAVAILABLE = "The language model could not be reached; the answer came without it."


def input_events(event: SessionEvent) -> list[Event] | None:
    """Events for an input-side or session-level pipeline event; None for response events."""
    match event:
        case SpeechStarted(item_id=item_id, audio_start_ms=ms):
            return [
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": ms,
                    "item_id": item_id,
                }
            ]
        case SpeechStopped(item_id=item_id, audio_end_ms=ms):
            return [
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": ms,
                    "item_id": item_id,
                }
            ]
        case InputCommitted(item=item, previous_item_id=prev):
            committed = {"type": "input_audio_buffer.committed", "item_id": item.id}
            return [{**committed, "previous_item_id": prev}, *_item_added(item, prev)]
        case InputCleared():
            return [{"type": "input_audio_buffer.cleared"}]
        case ItemAdded(item=item, previous_item_id=prev):
            return _item_added(item, prev)
        case ItemDeleted(item_id=item_id):
            return [{"type": "conversation.item.deleted", "item_id": item_id}]
        case ItemTruncated(item_id=item_id, audio_end_ms=ms):
            truncated = {"type": "conversation.item.truncated", "item_id": item_id}
            return [{**truncated, "content_index": 0, "audio_end_ms": ms}]
        case TranscriptionCompleted() | TranscriptionPartial() | TranscriptionFailed():
            return _transcription(event)
        case TurnFailed(message=message):
            return [error_event("server_error", message, type="server_error")]
        case LLMUnavailable():
            return [error_event("llm_unavailable", _LLM_UNAVAILABLE, type="server_error")]
    return None


def _item_added(item: ItemView, prev: str | None) -> list[Event]:
    rendered = render_item(item)
    return [
        {"type": "conversation.item.added", "previous_item_id": prev, "item": rendered},
        {"type": "conversation.item.done", "previous_item_id": prev, "item": rendered},
    ]


def _transcription(
    event: TranscriptionCompleted | TranscriptionPartial | TranscriptionFailed,
) -> list[Event]:
    ids = {"item_id": event.item_id, "content_index": 0}
    match event:
        case TranscriptionCompleted(transcript=text, audio_seconds=secs):
            prefix = "conversation.item.input_audio_transcription"
            delta = [{"type": f"{prefix}.delta", **ids, "delta": text}] if text else []
            usage = {"type": "duration", "seconds": round(secs, 3)}
            return [
                *delta,
                {"type": f"{prefix}.completed", **ids, "transcript": text, "usage": usage},
            ]
        case TranscriptionPartial(transcript=text):
            # VoxDialog's own event (asked for with session.voxdialog.partial_transcripts):
            # the whole hypothesis so far, which later ones replace.
            return [
                {"type": "voxdialog.input_audio_transcription.partial", **ids, "transcript": text}
            ]
        case TranscriptionFailed(message=message):
            error = {
                "type": "server_error",
                "code": "transcription_failed",
                "message": message,
                "param": None,
            }
            failed = "conversation.item.input_audio_transcription.failed"
            return [{"type": failed, **ids, "error": error}]


@dataclass(slots=True)
class _ResponseState:
    """What a response's events need between calls."""

    rid: str
    audio: bool
    message: ItemView
    message_index: int | None = None
    next_index: int = 0
    outputs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


class ResponseRenderer:
    """Renders a connection's events, keeping each response's output indexes between calls."""

    def __init__(self, *, conversation_id: str, output_format: dict[str, Any], voice: Any) -> None:
        self.conversation_id = conversation_id
        self.output_format = output_format
        self.voice = voice
        self._responses: dict[str, _ResponseState] = {}

    def render(self, event: SessionEvent) -> list[Event]:
        """Events for one pipeline event (audio goes through ``audio_delta``, encoded)."""
        rendered = input_events(event)
        if rendered is not None:
            return rendered
        match event:
            case ResponseStarted():
                return self._started(event)
            case ResponseText(response_id=rid, item_id=item_id, delta=delta):
                state = self._responses.get(rid)
                audio = state is None or state.audio
                kind = (
                    "response.output_audio_transcript.delta"
                    if audio
                    else "response.output_text.delta"
                )
                return self._content(rid, item_id, {"type": kind, "delta": delta})
            case FunctionCallAdded():
                return self._function_call(event)
            case ResponseEnded():
                return self._ended(event)
        return []

    def audio_delta(self, response_id: str, item_id: str, encoded: bytes) -> list[Event]:
        """A ``response.output_audio.delta`` with audio already in the wire format."""
        delta = base64.b64encode(encoded).decode()
        return self._content(
            response_id, item_id, {"type": "response.output_audio.delta", "delta": delta}
        )

    def response(
        self,
        response_id: str,
        *,
        status: str,
        audio: bool,
        output: list[dict[str, Any]] | None = None,
        details: Any = None,
    ) -> dict[str, Any]:
        """The response object."""
        return {
            "object": "realtime.response",
            "id": response_id,
            "status": status,
            "status_details": details,
            "output": output or [],
            "conversation_id": self.conversation_id,
            "output_modalities": ["audio"] if audio else ["text"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": self.output_format, "voice": self.voice}},
            "usage": dict(_ZERO_USAGE) if status != "in_progress" else None,
            "metadata": None,
        }

    def _content(self, rid: str, item_id: str, event: Event) -> list[Event]:
        # The message item opens with its first text or audio: a response that only calls
        # client tools has no message item at all.
        state = self._responses.get(rid)
        opening = self._open_message(state) if state else []
        index = state.message_index if state and state.message_index is not None else 0
        return [*opening, {"type": event["type"], **_ids(rid, item_id, index), **event}]

    def _started(self, event: ResponseStarted) -> list[Event]:
        rid = event.response_id
        self._responses[rid] = _ResponseState(rid, event.audio, event.item)
        created = self.response(rid, status="in_progress", audio=event.audio)
        return [{"type": "response.created", "response": created}]

    def _open_message(self, state: _ResponseState) -> list[Event]:
        if state.message_index is not None:
            return []
        index = state.message_index = state.next_index
        state.next_index += 1
        item, rid = render_item(state.message), state.rid
        part = {"type": "audio", "transcript": ""} if state.audio else {"type": "text", "text": ""}
        return [
            {
                "type": "response.output_item.added",
                "response_id": rid,
                "output_index": index,
                "item": item,
            },
            {"type": "conversation.item.added", "previous_item_id": None, "item": item},
            {
                "type": "response.content_part.added",
                **_ids(rid, state.message.id, index),
                "part": part,
            },
        ]

    def _function_call(self, event: FunctionCallAdded) -> list[Event]:
        state = self._responses.get(event.response_id)
        index = 0
        if state is not None:
            index = state.next_index
            state.next_index += 1
            state.outputs.append((index, render_item(event.item)))
        return _function_call_events(event.response_id, event.item, index)

    def _ended(self, event: ResponseEnded) -> list[Event]:
        rid, item = event.response_id, event.item
        state = self._responses.pop(rid, None) or _ResponseState(rid, True, item)
        out: list[Event] = []
        outputs = list(state.outputs)
        if state.message_index is not None:
            rendered = render_item(item)
            out += _message_done(rid, item, rendered, state.message_index, audio=state.audio)
            outputs.append((state.message_index, rendered))
        output = [rendered_item for _, rendered_item in sorted(outputs, key=lambda p: p[0])]
        response = self.response(
            rid, status=event.status, audio=state.audio, output=output, details=_details(event)
        )
        return [*out, {"type": "response.done", "response": response}]


def _ids(response_id: str, item_id: str, output_index: int = 0) -> dict[str, Any]:
    return {
        "response_id": response_id,
        "item_id": item_id,
        "output_index": output_index,
        "content_index": 0,
    }


def _message_done(
    rid: str, item: ItemView, rendered: dict[str, Any], index: int, *, audio: bool
) -> list[Event]:
    ids = _ids(rid, item.id, index)
    text = item.text or ""
    if audio:
        done = [
            {"type": "response.output_audio.done", **ids},
            {"type": "response.output_audio_transcript.done", **ids, "transcript": text},
        ]
        part = {"type": "audio", "transcript": text}
    else:
        done = [{"type": "response.output_text.done", **ids, "text": text}]
        part = {"type": "text", "text": text}
    return [
        *done,
        {"type": "response.content_part.done", **ids, "part": part},
        {"type": "conversation.item.done", "previous_item_id": None, "item": rendered},
        {
            "type": "response.output_item.done",
            "response_id": rid,
            "output_index": index,
            "item": rendered,
        },
    ]


def _function_call_events(rid: str, item: ItemView, index: int) -> list[Event]:
    done = render_item(item)
    opened = {**done, "status": "in_progress", "arguments": ""}
    common = {
        "response_id": rid,
        "item_id": item.id,
        "output_index": index,
        "call_id": item.call_id,
    }
    arguments = item.arguments or ""
    return [
        {
            "type": "response.output_item.added",
            "response_id": rid,
            "output_index": index,
            "item": opened,
        },
        {"type": "conversation.item.added", "previous_item_id": None, "item": opened},
        {"type": "response.function_call_arguments.delta", **common, "delta": arguments},
        {
            "type": "response.function_call_arguments.done",
            **common,
            "name": item.name,
            "arguments": arguments,
        },
        {"type": "conversation.item.done", "previous_item_id": None, "item": done},
        {
            "type": "response.output_item.done",
            "response_id": rid,
            "output_index": index,
            "item": done,
        },
    ]


def _details(event: ResponseEnded) -> Any:
    if event.status == "cancelled":
        return {"type": "cancelled", "reason": event.reason or "client_cancelled"}
    if event.status == "failed":
        error = {
            "type": "server_error",
            "code": "provider_error",
            "message": event.error or "failed",
        }
        return {"type": "failed", "error": error}
    return None
