"""Client commands: each typed client event applied to the connection's state.

A command returns the server events that answer it directly (``session.updated``,
``conversation.item.retrieved``); everything else the pipeline reports through its own
events. A command that cannot be applied raises ``CommandError`` and changes nothing.
"""

from __future__ import annotations

from typing import Any

from voxdialog.pipeline.config import ResponseOptions
from voxdialog.providers.base import VoiceSettings
from voxdialog.realtime.client_events import (
    AudioAppend,
    AudioClear,
    AudioCommit,
    ClientEvent,
    ItemCreate,
    ItemDelete,
    ItemRetrieve,
    ItemTruncate,
    OutputAudioClear,
    ResponseCancel,
    ResponseCreate,
    SessionUpdate,
)
from voxdialog.realtime.errors import CommandError, raise_problem
from voxdialog.realtime.items import parse_item, render_item
from voxdialog.realtime.session_object import (
    ConfigError,
    agent_named,
    merge_session,
    parse_tools,
    to_pipeline,
    with_agent_defaults,
)
from voxdialog.realtime.state import RealtimeState

Event = dict[str, Any]


async def apply(state: RealtimeState, event: ClientEvent) -> list[Event]:
    """Apply one client event; returns the server events that answer it."""
    voice = state.voice
    match event:
        case SessionUpdate():
            return await _session_update(state, event)
        case AudioAppend(audio=audio):
            await voice.append_audio(state.decode_audio(audio))
        case AudioCommit():
            raise_problem(await voice.commit())
        case AudioClear():
            await voice.clear_input()
        case ItemCreate(item=item, previous_item_id=prev):
            raise_problem(await voice.add_item(parse_item(item), previous_item_id=prev))
        case ItemTruncate(item_id=item_id, audio_end_ms=end):
            raise_problem(await voice.truncate(item_id, end))
        case ItemDelete(item_id=item_id):
            raise_problem(await voice.delete_item(item_id))
        case ItemRetrieve(item_id=item_id):
            return [_retrieved(state, item_id)]
        case ResponseCreate():
            raise_problem(await voice.create_response(_response_options(state, event)))
        case ResponseCancel():
            raise_problem(await voice.cancel_response())
        case OutputAudioClear():
            raise CommandError(
                "invalid_value",
                "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.",
                param="type",
            )
    return []


async def _session_update(state: RealtimeState, event: SessionUpdate) -> list[Event]:
    patch, agent = event.session, state.agent
    try:
        merged = merge_session(state.session, patch, turns=agent.turns)
        named = agent_named(patch)
        if named is not None and named not in (agent.agent_id, agent.name):
            # Another agent: its voice and turn taking become the defaults the patch applies to.
            agent = await state.choose_agent(named)
            seeded = with_agent_defaults(state.session, agent.turns, agent.voice)
            merged = merge_session(seeded, patch, turns=agent.turns)
        config = to_pipeline(merged, agent.turns)
    except ConfigError as e:
        raise CommandError(e.code, str(e), param=e.param) from e
    if "voxdialog" in merged:
        merged["voxdialog"]["agent"] = agent.agent_id
    if agent is not state.agent:
        await state.bind_agent(agent)
    state.replace_session(merged)
    state.voice.apply_config(config)
    return [{"type": "session.updated", "session": merged}]


def _retrieved(state: RealtimeState, item_id: str) -> Event:
    item = state.voice.conversation.get(item_id)
    if item is None:
        raise CommandError(
            "item_not_found", f"Item with id '{item_id}' not found.", param="item_id"
        )
    return {
        "type": "conversation.item.retrieved",
        "item": render_item(item.snapshot(), with_audio=True),
    }


def _response_options(state: RealtimeState, event: ResponseCreate) -> ResponseOptions:
    if state.session["type"] != "realtime":
        raise CommandError(
            "invalid_value", "Transcription sessions do not create responses.", param="type"
        )
    params = event.response
    modalities = params.output_modalities
    if modalities is not None and modalities not in (["audio"], ["text"]):
        raise CommandError(
            "invalid_value",
            "output_modalities must be ['audio'] or ['text'].",
            param="response.output_modalities",
        )
    tools = None
    if params.tools is not None:
        try:
            tools = parse_tools(params.tools, param="response.tools")
        except ConfigError as e:
            raise CommandError(e.code, str(e), param=e.param) from e
    voice = params.voice
    return ResponseOptions(
        tools=tools,
        output_audio=None if modalities is None else modalities == ["audio"],
        instructions=params.instructions,
        voice=VoiceSettings(voice=voice) if voice is not None else None,
        in_conversation=params.conversation != "none",
    )
