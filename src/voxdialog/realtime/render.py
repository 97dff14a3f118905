"""Turns pipeline SessionEvents into GA Realtime server events (plain dicts)."""

from __future__ import annotations

import base64
from typing import Any

from voxdialog.pipeline.conversation import Item
from voxdialog.pipeline.events import (
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
        self._audio: dict[str, bool] = {}

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
                kind = (
                    "response.output_audio_transcript.delta"
                    if self._audio.get(rid)
                    else "response.output_text.delta"
                )
                return [{"type": kind, **self._ids(rid, item_id), "delta": delta}]
            case ResponseAudio(response_id=rid, item_id=item_id):
                data = base64.b64encode(encoded_audio or b"").decode()
                return [
                    {
                        "type": "response.output_audio.delta",
                        **self._ids(rid, item_id),
                        "delta": data,
                    }
                ]
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

    def _ids(self, response_id: str, item_id: str) -> dict[str, Any]:
        return {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
        }

    def _started(self, event: ResponseStarted) -> list[Event]:
        self._audio[event.response_id] = event.audio
        item = render_item(event.item)
        rid = event.response_id
        part = {"type": "audio", "transcript": ""} if event.audio else {"type": "text", "text": ""}
        return [
            {
                "type": "response.created",
                "response": self.response(rid, status="in_progress", audio=event.audio),
            },
            {
                "type": "response.output_item.added",
                "response_id": rid,
                "output_index": 0,
                "item": item,
            },
            {"type": "conversation.item.added", "previous_item_id": None, "item": item},
            {
                "type": "response.content_part.added",
                "response_id": rid,
                "item_id": event.item.id,
                "output_index": 0,
                "content_index": 0,
                "part": part,
            },
        ]

    def _ended(self, event: ResponseEnded) -> list[Event]:
        rid, item = event.response_id, event.item
        audio = self._audio.pop(rid, True)
        ids = self._ids(rid, item.id)
        text = item.text or ""
        out: list[Event] = []
        if audio:
            out.append({"type": "response.output_audio.done", **ids})
            out.append({"type": "response.output_audio_transcript.done", **ids, "transcript": text})
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
                "output_index": 0,
                "item": rendered,
            },
        ]
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
        out.append(
            {
                "type": "response.done",
                "response": self.response(
                    rid, status=event.status, audio=audio, output=[rendered], details=details
                ),
            }
        )
        return out


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
