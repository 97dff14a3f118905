"""Conversation items on the wire: a client's item in, an item snapshot out."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from voxdialog.pipeline.conversation import Item, ItemView
from voxdialog.pipeline.ids import new_id
from voxdialog.realtime.errors import CommandError

_MAX_ID_CHARS = 64
_TEXT_PARTS = ("input_text", "output_text", "text")


def parse_item(raw: Mapping[str, Any]) -> Item:
    """A ``conversation.item.create`` item as a pipeline item; raises CommandError."""
    raw_id = raw.get("id")
    item_id = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= _MAX_ID_CHARS else None
    item_id = item_id or new_id("item")
    kind = raw.get("type", "message")
    if kind == "function_call_output":
        return Item(
            id=item_id,
            type=kind,
            role="tool",
            kind=kind,
            call_id=str(raw.get("call_id", "")),
            output=str(raw.get("output", "")),
        )
    if kind == "function_call":
        return Item(
            id=item_id,
            type=kind,
            role="assistant",
            kind=kind,
            call_id=str(raw.get("call_id", "")),
            name=str(raw.get("name", "")),
            arguments=str(raw.get("arguments", "")),
        )
    if kind != "message":
        raise CommandError("invalid_value", f"Invalid item type: '{kind}'.", param="item.type")
    return _message(item_id, raw)


def _message(item_id: str, raw: Mapping[str, Any]) -> Item:
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
    texts = [_part_text(part, role) for part in content]
    return Item(
        id=item_id,
        type="message",
        role=role,
        kind="output_text" if role == "assistant" else "input_text",
        text=" ".join(t for t in texts if t),
    )


def _part_text(part: Any, role: str) -> str:
    if not isinstance(part, Mapping):
        raise CommandError("invalid_value", "content parts must be objects.", param="item.content")
    ptype = part.get("type")
    if ptype in _TEXT_PARTS:
        return str(part.get("text", ""))
    if ptype == "input_audio" and role == "user":
        return str(part.get("transcript") or "")
    raise CommandError(
        "invalid_value", f"Unsupported content type: '{ptype}'.", param="item.content.type"
    )


def render_item(item: ItemView, *, with_audio: bool = False) -> dict[str, Any]:
    """An item as the protocol shows it."""
    common = {"id": item.id, "object": "realtime.item", "type": item.type}
    if item.type == "function_call":
        return {
            **common,
            "status": item.status,
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments or "",
        }
    if item.type == "function_call_output":
        return {**common, "call_id": item.call_id, "output": item.output or ""}
    part: dict[str, Any] = {"type": item.kind}
    if item.kind in ("input_text", "output_text"):
        part["text"] = item.text or ""
    else:
        part["transcript"] = item.text
        if with_audio and item.audio is not None:
            part["audio"] = base64.b64encode(item.audio).decode()
    content = [] if item.status == "in_progress" else [part]
    return {**common, "role": item.role, "status": item.status, "content": content}
