"""Client events: validate each one and hand it to the VoiceSession."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from voxdialog.audio.wire import InputDecoder
from voxdialog.pipeline.conversation import Item
from voxdialog.pipeline.ids import new_id
from voxdialog.pipeline.session import ResponseOptions
from voxdialog.providers.base import VoiceSettings
from voxdialog.realtime.config import (
    ConfigError,
    agent_named,
    input_format,
    merge_session,
    parse_tools,
    to_pipeline,
    with_agent_defaults,
)
from voxdialog.realtime.render import render_item

if TYPE_CHECKING:
    from voxdialog.realtime.handler import RealtimeConnection

Handler = Callable[["RealtimeConnection", Mapping[str, Any], "str | None"], Awaitable[None]]


class CommandError(ValueError):
    """A client event that cannot be applied; becomes an ``error`` event."""

    def __init__(self, code: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


async def dispatch(conn: RealtimeConnection, event: Mapping[str, Any]) -> None:
    """Route one client event."""
    handler = _HANDLERS.get(str(event["type"]))
    if handler is None:
        raise CommandError(
            "invalid_value",
            f"Invalid value: '{event['type']}'. Unsupported event type.",
            param="type",
        )
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    await handler(conn, event, event_id)


def _str_field(event: Mapping[str, Any], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise CommandError(
            "missing_required_parameter", f"Missing required parameter: '{name}'.", param=name
        )
    return value


async def _session_update(
    conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None
) -> None:
    patch = event.get("session") or {}
    agent = conn.agent
    try:
        merged = merge_session(conn.session, patch, turns=agent.turns)
        named = agent_named(patch)
        if named is not None and named not in (agent.agent_id, agent.name):
            # Another agent: its voice and turn taking become the defaults the patch applies to.
            agent = await conn.choose_agent(named)
            seeded = with_agent_defaults(conn.session, agent.turns, agent.voice)
            merged = merge_session(seeded, patch, turns=agent.turns)
        config = to_pipeline(merged, agent.turns)
    except ConfigError as e:
        raise CommandError(e.code, str(e), param=e.param) from e
    if "voxdialog" in merged:
        merged["voxdialog"]["agent"] = agent.agent_id
    if agent is not conn.agent:
        await conn.bind_agent(agent)
    if merged["audio"]["input"]["format"] != conn.session["audio"]["input"]["format"]:
        conn.decoder = InputDecoder(input_format(merged))
    conn.session = merged
    conn.voice.apply_config(config)
    output = merged["audio"].get("output", {})
    conn.renderer.output_format = output.get("format", conn.renderer.output_format)
    conn.renderer.voice = output.get("voice")
    await conn.send({"type": "session.updated", "session": merged})


async def _append(conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None) -> None:
    pcm = conn.append_audio(_str_field(event, "audio"))
    await conn.voice.append_audio(pcm)


async def _commit(conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None) -> None:
    await conn.voice.commit(event_id=event_id)


async def _clear(conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None) -> None:
    await conn.voice.clear_input()


def _parse_item(raw: Any) -> Item:
    if not isinstance(raw, Mapping):
        raise CommandError(
            "missing_required_parameter", "Missing required parameter: 'item'.", param="item"
        )
    raw_id = raw.get("id")
    item_id = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= 64 else new_id("item")
    kind = raw.get("type", "message")
    if kind == "function_call_output":
        return Item(
            id=item_id,
            type=kind,
            role="tool",
            kind="function_call_output",
            call_id=str(raw.get("call_id", "")),
            output=str(raw.get("output", "")),
        )
    if kind == "function_call":
        return Item(
            id=item_id,
            type=kind,
            role="assistant",
            kind="function_call",
            call_id=str(raw.get("call_id", "")),
            name=str(raw.get("name", "")),
            arguments=str(raw.get("arguments", "")),
        )
    if kind != "message":
        raise CommandError("invalid_value", f"Invalid item type: '{kind}'.", param="item.type")
    role = raw.get("role")
    if role not in ("user", "assistant", "system"):
        raise CommandError(
            "invalid_value", "item.role must be user, assistant or system.", param="item.role"
        )
    content = raw.get("content")
    if not isinstance(content, list) or not content:
        raise CommandError(
            "missing_required_parameter",
            "Missing required parameter: 'item.content'.",
            param="item.content",
        )
    texts: list[str] = []
    content_kind = "input_text"
    for part in content:
        if not isinstance(part, Mapping):
            raise CommandError(
                "invalid_value", "content parts must be objects.", param="item.content"
            )
        ptype = part.get("type")
        if ptype in ("input_text", "output_text", "text"):
            texts.append(str(part.get("text", "")))
            content_kind = "output_text" if role == "assistant" else "input_text"
        elif ptype == "input_audio" and role == "user":
            texts.append(str(part.get("transcript") or ""))
            content_kind = "input_text"
        else:
            raise CommandError(
                "invalid_value", f"Unsupported content type: '{ptype}'.", param="item.content.type"
            )
    return Item(
        id=item_id,
        type="message",
        role=role,
        kind=content_kind,
        text=" ".join(t for t in texts if t),
    )


async def _item_create(
    conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None
) -> None:
    item = _parse_item(event.get("item"))
    prev = event.get("previous_item_id")
    await conn.voice.add_item(
        item, previous_item_id=prev if isinstance(prev, str) else None, event_id=event_id
    )


async def _item_truncate(
    conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None
) -> None:
    item_id = _str_field(event, "item_id")
    end = event.get("audio_end_ms")
    if isinstance(end, bool) or not isinstance(end, int):
        raise CommandError(
            "missing_required_parameter",
            "Missing required parameter: 'audio_end_ms'.",
            param="audio_end_ms",
        )
    await conn.voice.truncate(item_id, end, event_id=event_id)


async def _item_delete(
    conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None
) -> None:
    await conn.voice.delete_item(_str_field(event, "item_id"), event_id=event_id)


async def _item_retrieve(
    conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None
) -> None:
    item_id = _str_field(event, "item_id")
    item = conn.voice.conversation.get(item_id)
    if item is None:
        raise CommandError(
            "item_not_found", f"Item with id '{item_id}' not found.", param="item_id"
        )
    await conn.send(
        {"type": "conversation.item.retrieved", "item": render_item(item, with_audio=True)}
    )


async def _response_create(
    conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None
) -> None:
    if conn.session["type"] != "realtime":
        raise CommandError(
            "invalid_value", "Transcription sessions do not create responses.", param="type"
        )
    raw = event.get("response") or {}
    if not isinstance(raw, Mapping):
        raise CommandError("invalid_value", "response must be an object.", param="response")
    modalities = raw.get("output_modalities")
    if modalities is not None and modalities not in (["audio"], ["text"]):
        raise CommandError(
            "invalid_value",
            "output_modalities must be ['audio'] or ['text'].",
            param="response.output_modalities",
        )
    instructions = raw.get("instructions")
    voice_name = ((raw.get("audio") or {}).get("output") or {}).get("voice")
    tools = None
    if "tools" in raw:
        try:
            tools = parse_tools(raw["tools"], param="response.tools")
        except ConfigError as e:
            raise CommandError(e.code, str(e), param=e.param) from e
    options = ResponseOptions(
        tools=tools,
        output_audio=None if modalities is None else modalities == ["audio"],
        instructions=instructions if isinstance(instructions, str) else None,
        voice=VoiceSettings(voice=str(voice_name)) if isinstance(voice_name, str) else None,
        in_conversation=raw.get("conversation", "auto") != "none",
    )
    await conn.voice.create_response(options, event_id=event_id)


async def _response_cancel(
    conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None
) -> None:
    await conn.voice.cancel_response(event_id=event_id)


async def _output_clear(
    conn: RealtimeConnection, event: Mapping[str, Any], event_id: str | None
) -> None:
    raise CommandError(
        "invalid_value",
        "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.",
        param="type",
    )


_HANDLERS: dict[str, Handler] = {
    "session.update": _session_update,
    "input_audio_buffer.append": _append,
    "input_audio_buffer.commit": _commit,
    "input_audio_buffer.clear": _clear,
    "conversation.item.create": _item_create,
    "conversation.item.truncate": _item_truncate,
    "conversation.item.delete": _item_delete,
    "conversation.item.retrieve": _item_retrieve,
    "response.create": _response_create,
    "response.cancel": _response_cancel,
    "output_audio_buffer.clear": _output_clear,
}
