"""Turns pipeline SessionEvents into GA Realtime server events (plain dicts)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from voxdialog.pipeline.conversation import Item
from voxdialog.pipeline.events import (
    FunctionCallAdded,
    InputCleared,
    InputCommitted,
    ItemAdded,
    ItemDeleted,
    ItemTruncated,
    ResponseAudio,
    ResponseEnded,
    ResponseStarted,
    ResponseText,
    SessionEvent,
    SessionProblem,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionFailed,
    TranscriptionPartial,
)

Event = dict[str, Any]
_ZERO_USAGE = {
    "total_tokens": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "input_token_details": {"text_tokens": 0, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 0, "audio_tokens": 0},
}


def render_item(item: Item, *, with_audio: bool = False) -> dict[str, Any]:
    """An item as the protocol shows it."""
    if item.type == "function_call":
        return {
            "id": item.id,
            "object": "realtime.item",
            "type": "function_call",
            "status": item.status,
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments or "",
        }
    if item.type == "function_call_output":
        return {
            "id": item.id,
            "object": "realtime.item",
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": item.output or "",
        }
    part: dict[str, Any] = {"type": item.kind}
    if item.kind in ("input_text", "output_text"):
        part["text"] = item.text or ""
    else:
        part["transcript"] = item.text
        if with_audio and item.audio is not None:
            part["audio"] = base64.b64encode(item.audio).decode()
    content = [] if item.status == "in_progress" else [part]
    return {
        "id": item.id,
        "object": "realtime.item",
        "type": "message",
        "role": item.role,
        "status": item.status,
        "content": content,
    }


class ResponseRenderer:
    """Keeps what the response events need between calls (ids, modality, audio encoder)."""

    def __init__(self, *, conversation_id: str, output_format: dict[str, Any], voice: Any) -> None:
        self.conversation_id = conversation_id
        self.output_format = output_format
        self.voice = voice
        self._responses: dict[str, _ResponseState] = {}

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

    def render(self, event: SessionEvent, *, encoded_audio: bytes | None = None) -> list[Event]:
        """Events for one pipeline event (``encoded_audio`` for ResponseAudio)."""
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
                rendered = render_item(item)
                return [
                    {
                        "type": "input_audio_buffer.committed",
                        "item_id": item.id,
                        "previous_item_id": prev,
                    },
                    {"type": "conversation.item.added", "previous_item_id": prev, "item": rendered},
                    {"type": "conversation.item.done", "previous_item_id": prev, "item": rendered},
                ]
            case InputCleared():
                return [{"type": "input_audio_buffer.cleared"}]
            case ItemAdded(item=item, previous_item_id=prev):
                rendered = render_item(item)
                return [
                    {"type": "conversation.item.added", "previous_item_id": prev, "item": rendered},
                    {"type": "conversation.item.done", "previous_item_id": prev, "item": rendered},
                ]
            case ItemDeleted(item_id=item_id):
                return [{"type": "conversation.item.deleted", "item_id": item_id}]
            case ItemTruncated(item_id=item_id, audio_end_ms=ms):
                return [
                    {
                        "type": "conversation.item.truncated",
                        "item_id": item_id,
                        "content_index": 0,
                        "audio_end_ms": ms,
                    }
                ]
            case TranscriptionCompleted(item_id=item_id, transcript=text, audio_seconds=secs):
                out: list[Event] = []
                if text:
                    out.append(
                        {
                            "type": "conversation.item.input_audio_transcription.delta",
                            "item_id": item_id,
                            "content_index": 0,
                            "delta": text,
                        }
                    )
                out.append(
                    {
                        "type": "conversation.item.input_audio_transcription.completed",
                        "item_id": item_id,
                        "content_index": 0,
                        "transcript": text,
                        "usage": {"type": "duration", "seconds": round(secs, 3)},
                    }
                )
                return out
            case TranscriptionPartial(item_id=item_id, transcript=text):
                # VoxDialog's own event (asked for with session.voxdialog.partial_transcripts):
                # the whole hypothesis so far, which later ones replace.
                return [
                    {
                        "type": "voxdialog.input_audio_transcription.partial",
                        "item_id": item_id,
                        "content_index": 0,
                        "transcript": text,
                    }
                ]
            case TranscriptionFailed(item_id=item_id, message=message):
                return [
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item_id,
                        "content_index": 0,
                        "error": {
                            "type": "server_error",
                            "code": "transcription_failed",
                            "message": message,
                            "param": None,
                        },
                    }
                ]
            case ResponseStarted():
                return self._started(event)
            case ResponseText(response_id=rid, item_id=item_id, delta=delta):
                state = self._responses.get(rid)
                opening = self._open_message(state) if state else []
                kind = (
                    "response.output_audio_transcript.delta"
                    if state is None or state.audio
                    else "response.output_text.delta"
                )
                index = state.message_index if state and state.message_index is not None else 0
                return [*opening, {"type": kind, **self._ids(rid, item_id, index), "delta": delta}]
            case ResponseAudio(response_id=rid, item_id=item_id):
                state = self._responses.get(rid)
                opening = self._open_message(state) if state else []
                index = state.message_index if state and state.message_index is not None else 0
                data = base64.b64encode(encoded_audio or b"").decode()
                return [
                    *opening,
                    {
                        "type": "response.output_audio.delta",
                        **self._ids(rid, item_id, index),
                        "delta": data,
                    },
                ]
            case FunctionCallAdded():
                return self._function_call(event)
            case ResponseEnded():
                return self._ended(event)
            case SessionProblem():
                return [
                    error_event(
                        event.code,
                        event.message,
                        type=event.type,
                        param=event.param,
                        event_id=event.event_id,
                    )
                ]
        return []

    def _ids(self, response_id: str, item_id: str, output_index: int = 0) -> dict[str, Any]:
        return {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": output_index,
            "content_index": 0,
        }

    def _started(self, event: ResponseStarted) -> list[Event]:
        # The message item opens with its first text or audio: a response that only calls
        # client tools has no message item at all.
        self._responses[event.response_id] = _ResponseState(
            event.audio, event.item, rid=event.response_id
        )
        return [
            {
                "type": "response.created",
                "response": self.response(
                    event.response_id, status="in_progress", audio=event.audio
                ),
            }
        ]

    def _open_message(self, state: _ResponseState) -> list[Event]:
        if state.message_index is not None:
            return []
        state.message_index = state.next_index
        state.next_index += 1
        item = render_item(state.message)
        rid = state.rid
        part = {"type": "audio", "transcript": ""} if state.audio else {"type": "text", "text": ""}
        return [
            {
                "type": "response.output_item.added",
                "response_id": rid,
                "output_index": state.message_index,
                "item": item,
            },
            {"type": "conversation.item.added", "previous_item_id": None, "item": item},
            {
                "type": "response.content_part.added",
                **self._ids(rid, state.message.id, state.message_index),
                "part": part,
            },
        ]

    def _function_call(self, event: FunctionCallAdded) -> list[Event]:
        state = self._responses.get(event.response_id)
        index = 0
        if state is not None:
            index = state.next_index
            state.next_index += 1
        item = event.item
        done = render_item(item)
        state_outputs = state.outputs if state is not None else []
        state_outputs.append((index, done))
        rid = event.response_id
        common = {
            "response_id": rid,
            "item_id": item.id,
            "output_index": index,
            "call_id": item.call_id,
        }
        return [
            {
                "type": "response.output_item.added",
                "response_id": rid,
                "output_index": index,
                "item": {**done, "status": "in_progress", "arguments": ""},
            },
            {
                "type": "conversation.item.added",
                "previous_item_id": None,
                "item": {**done, "status": "in_progress", "arguments": ""},
            },
            {
                "type": "response.function_call_arguments.delta",
                **common,
                "delta": item.arguments or "",
            },
            {
                "type": "response.function_call_arguments.done",
                **common,
                "name": item.name,
                "arguments": item.arguments or "",
            },
            {"type": "conversation.item.done", "previous_item_id": None, "item": done},
            {
                "type": "response.output_item.done",
                "response_id": rid,
                "output_index": index,
                "item": done,
            },
        ]

    def _ended(self, event: ResponseEnded) -> list[Event]:
        rid, item = event.response_id, event.item
        state = self._responses.pop(rid, None) or _ResponseState(True, item)
        out: list[Event] = []
        outputs = list(state.outputs)
        if state.message_index is not None:
            ids = self._ids(rid, item.id, state.message_index)
            text = item.text or ""
            if state.audio:
                out.append({"type": "response.output_audio.done", **ids})
                out.append(
                    {"type": "response.output_audio_transcript.done", **ids, "transcript": text}
                )
                part = {"type": "audio", "transcript": text}
            else:
                out.append({"type": "response.output_text.done", **ids, "text": text})
                part = {"type": "text", "text": text}
            rendered = render_item(item)
            out += [
                {"type": "response.content_part.done", **ids, "part": part},
                {"type": "conversation.item.done", "previous_item_id": None, "item": rendered},
                {
                    "type": "response.output_item.done",
                    "response_id": rid,
                    "output_index": state.message_index,
                    "item": rendered,
                },
            ]
            outputs.append((state.message_index, rendered))
        details: Any = None
        if event.status == "cancelled":
            details = {"type": "cancelled", "reason": event.reason or "client_cancelled"}
        elif event.status == "failed":
            details = {
                "type": "failed",
                "error": {
                    "type": "server_error",
                    "code": "provider_error",
                    "message": event.error or "failed",
                },
            }
        output = [rendered_item for _, rendered_item in sorted(outputs, key=lambda p: p[0])]
        out.append(
            {
                "type": "response.done",
                "response": self.response(
                    rid, status=event.status, audio=state.audio, output=output, details=details
                ),
            }
        )
        return out


@dataclass(slots=True)
class _ResponseState:
    """What a response's events need between calls."""

    audio: bool
    message: Item
    message_index: int | None = None
    next_index: int = 0
    outputs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rid: str = ""


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
