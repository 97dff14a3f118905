"""The Realtime session object (GA shape): defaults, ``session.update`` merging, validation, and
the pipeline's view of it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from voxdialog.agents.stages import turn_config
from voxdialog.audio.formats import WireFormat
from voxdialog.audio.wire import format_to_ga, parse_ga_format
from voxdialog.pipeline.config import SessionConfig
from voxdialog.pipeline.turns import TurnConfig
from voxdialog.providers.base import ToolSpec, VoiceSettings
from voxdialog.settings import TurnSettings, accepts_model

DEFAULT_VOICE = "alloy"
"""The voice a session starts with when its agent names none (every local voice answers to it)."""
_AGENT_REF_CHARS = 128
_ECHOED = ("tracing", "prompt", "include", "truncation", "tool_choice", "tools")
_KNOWN_TOP = {
    "type",
    "object",
    "id",
    "model",
    "expires_at",
    "output_modalities",
    "instructions",
    "audio",
    "max_output_tokens",
    "voxdialog",
    *_ECHOED,
}


class ConfigError(ValueError):
    """An invalid ``session.update``; nothing of it is applied."""

    def __init__(self, message: str, *, param: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def default_session(
    *,
    session_id: str,
    model: str,
    turns: TurnSettings,
    expires_at: int,
    kind: str = "realtime",
    voice: str | None = None,
) -> dict[str, Any]:
    """The effective session a new connection starts with (``voice``: the agent's, if any)."""
    turn_detection = {
        "type": "server_vad",
        "threshold": turns.threshold,
        "prefix_padding_ms": turns.prefix_padding_ms,
        "silence_duration_ms": turns.silence_duration_ms,
        "idle_timeout_ms": None,
        "create_response": kind == "realtime",
        "interrupt_response": True,
    }
    pcm = {"type": "audio/pcm", "rate": 24000}
    audio_input = {
        "format": dict(pcm),
        "transcription": None,
        "noise_reduction": None,
        "turn_detection": turn_detection,
    }
    if kind == "transcription":
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": session_id,
            "expires_at": expires_at,
            "include": None,
            "audio": {"input": {**audio_input, "transcription": {"model": "whisper-1"}}},
        }
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "expires_at": expires_at,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "truncation": "auto",
        "tracing": None,
        "prompt": None,
        "include": None,
        "audio": {
            "input": audio_input,
            "output": {"format": dict(pcm), "voice": voice or DEFAULT_VOICE, "speed": 1.0},
        },
    }


def merge_session(
    current: Mapping[str, Any], patch: Mapping[str, Any], *, turns: TurnSettings | None = None
) -> dict[str, Any]:
    """Apply a ``session.update`` patch; raise ConfigError (and change nothing) if invalid.

    A ``turn_detection`` object replaces the current one whole; the fields it leaves out take
    the agent's values (``turns``), or OpenAI's defaults without an agent.
    """
    if not isinstance(patch, Mapping):
        raise ConfigError("session must be an object.", param="session", code="invalid_type")
    merged = copy.deepcopy(dict(current))
    for key, value in patch.items():
        if key not in _KNOWN_TOP:
            raise ConfigError(
                f"Unknown parameter: 'session.{key}'.",
                param=f"session.{key}",
                code="unknown_parameter",
            )
        if key in ("id", "object", "expires_at"):
            continue
        if key == "type":
            if value != current["type"]:
                raise ConfigError(f"Cannot change session type to {value!r}.", param="session.type")
        elif key == "model":
            # Any name the handshake accepts names this session's model: no change.
            served = current.get("model")
            if value != served and (served is None or not accepts_model(value, served)):
                raise ConfigError("Cannot change the model of a session.", param="session.model")
        elif key == "output_modalities":
            if value not in (["audio"], ["text"]):
                raise ConfigError(
                    "output_modalities must be ['audio'] or ['text'].",
                    param="session.output_modalities",
                )
            merged[key] = list(value)
        elif key == "instructions":
            if not isinstance(value, str) or len(value) > 32_000:
                raise ConfigError(
                    "instructions must be a string (at most 32000 characters).",
                    param="session.instructions",
                )
            merged[key] = value
        elif key == "max_output_tokens":
            if value != "inf" and not (isinstance(value, int) and 1 <= value <= 4096):
                raise ConfigError(
                    "max_output_tokens must be 1..4096 or 'inf'.", param="session.max_output_tokens"
                )
            merged[key] = value
        elif key == "tools":
            parse_tools(value, param="session.tools")
            merged[key] = list(value)
        elif key == "audio":
            merged["audio"] = _merge_audio(merged.get("audio", {}), value, turns)
        elif key == "voxdialog":
            merged[key] = {**merged.get(key, {}), **_extension(value)}
        else:
            merged[key] = value
    return merged


def _extension(value: Any) -> dict[str, Any]:
    """VoxDialog's own session fields: ``agent`` and ``partial_transcripts``."""
    if not isinstance(value, Mapping):
        raise ConfigError("voxdialog must be an object.", param="session.voxdialog")
    for key in value:
        if key not in ("agent", "partial_transcripts"):
            raise ConfigError(
                f"Unknown parameter: 'session.voxdialog.{key}'.",
                param=f"session.voxdialog.{key}",
                code="unknown_parameter",
            )
    agent = value.get("agent")
    if "agent" in value and (
        not isinstance(agent, str) or not agent.strip() or len(agent) > _AGENT_REF_CHARS
    ):
        raise ConfigError(
            f"agent must be an agent's id or name (1-{_AGENT_REF_CHARS} characters).",
            param="session.voxdialog.agent",
        )
    if "partial_transcripts" in value and not isinstance(value["partial_transcripts"], bool):
        raise ConfigError(
            "partial_transcripts must be true or false.",
            param="session.voxdialog.partial_transcripts",
        )
    return dict(value)


def agent_named(patch: Any) -> str | None:
    """The agent a ``session.update`` patch names (``session.voxdialog.agent``), if any."""
    extension = patch.get("voxdialog") if isinstance(patch, Mapping) else None
    agent = extension.get("agent") if isinstance(extension, Mapping) else None
    return agent if isinstance(agent, str) else None


def with_agent_defaults(
    session: Mapping[str, Any], turns: TurnSettings, voice: str | None
) -> dict[str, Any]:
    """``session`` with another agent's voice and turn-taking defaults (its other fields kept).

    A session that switched turn detection off, or to semantic VAD, keeps that choice.
    """
    seeded = copy.deepcopy(dict(session))
    audio = seeded.get("audio", {})
    if "output" in audio:
        audio["output"]["voice"] = voice or DEFAULT_VOICE
    td = audio.get("input", {}).get("turn_detection")
    if isinstance(td, dict) and td.get("type") == "server_vad":
        td.update(
            threshold=turns.threshold,
            prefix_padding_ms=turns.prefix_padding_ms,
            silence_duration_ms=turns.silence_duration_ms,
        )
    return seeded


def parse_tools(value: Any, *, param: str) -> tuple[ToolSpec, ...]:
    """Client function tools (``[{type:"function", name, description, parameters}]``)."""
    if not isinstance(value, list) or len(value) > 128:
        raise ConfigError("tools must be a list of at most 128 tools.", param=param)
    specs: list[ToolSpec] = []
    for n, tool in enumerate(value):
        where = f"{param}[{n}]"
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
            raise ConfigError("only function tools are supported.", param=f"{where}.type")
        name = tool.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise ConfigError("a tool needs a name (1-64 characters).", param=f"{where}.name")
        parameters = tool.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping):
            raise ConfigError(
                "parameters must be a JSON Schema object.", param=f"{where}.parameters"
            )
        description = tool.get("description") or ""
        specs.append(
            ToolSpec(name=name, description=str(description)[:2048], parameters=dict(parameters))
        )
    return tuple(specs)


def _merge_audio(current: dict[str, Any], patch: Any, turns: TurnSettings | None) -> dict[str, Any]:
    if not isinstance(patch, Mapping):
        raise ConfigError("audio must be an object.", param="session.audio", code="invalid_type")
    audio = copy.deepcopy(current)
    for side, fields in patch.items():
        if side not in audio or not isinstance(fields, Mapping):
            raise ConfigError(
                f"Unknown parameter: 'session.audio.{side}'.",
                param=f"session.audio.{side}",
                code="unknown_parameter",
            )
        for key, value in fields.items():
            param = f"session.audio.{side}.{key}"
            audio[side][key] = _audio_field(side, key, value, param, turns)
    return audio


def _audio_field(side: str, key: str, value: Any, param: str, turns: TurnSettings | None) -> Any:
    if key == "format":
        try:
            return format_to_ga(parse_ga_format(value))
        except (ValueError, TypeError, AttributeError) as e:
            raise ConfigError(str(e) or "invalid audio format", param=param) from e
    if side == "input" and key == "turn_detection":
        return _turn_detection(value, param, turns)
    if side == "input" and key in ("transcription", "noise_reduction"):
        if value is not None and not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be an object or null.", param=param)
        return dict(value) if value is not None else None
    if side == "output" and key == "voice":
        if isinstance(value, Mapping) and isinstance(value.get("id"), str):
            return dict(value)
        if not isinstance(value, str) or not value or len(value) > 64:
            raise ConfigError("voice must be a name or {'id': ...}.", param=param)
        return value
    if side == "output" and key == "speed":
        if not isinstance(value, int | float) or not 0.25 <= value <= 1.5:
            raise ConfigError("speed must be between 0.25 and 1.5.", param=param)
        return float(value)
    raise ConfigError(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


def _turn_detection(value: Any, param: str, turns: TurnSettings | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("type") not in ("server_vad", "semantic_vad"):
        raise ConfigError(
            "turn_detection.type must be 'server_vad' or 'semantic_vad'.", param=f"{param}.type"
        )
    out: dict[str, Any] = {
        "type": value["type"],
        "threshold": turns.threshold if turns else 0.5,
        "prefix_padding_ms": turns.prefix_padding_ms if turns else 300,
        "silence_duration_ms": turns.silence_duration_ms if turns else 500,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
    if value["type"] == "semantic_vad":
        out = {
            "type": "semantic_vad",
            "eagerness": value.get("eagerness", "auto"),
            "create_response": True,
            "interrupt_response": True,
        }
    bounds = {
        "threshold": (0.0, 1.0),
        "prefix_padding_ms": (0, 5000),
        "silence_duration_ms": (100, 10_000),
        "idle_timeout_ms": (5000, 30_000),
    }
    for key, item in value.items():
        if key == "type":
            continue
        if key in bounds:
            low, high = bounds[key]
            if item is None and key == "idle_timeout_ms":
                out[key] = None
                continue
            if (
                isinstance(item, bool)
                or not isinstance(item, int | float)
                or not low <= item <= high
            ):
                raise ConfigError(
                    f"{key} must be between {low} and {high}.",
                    param=f"{param}.{key}",
                    code="integer_below_min_value"
                    if isinstance(item, int | float) and item < low
                    else "invalid_value",
                )
            out[key] = item
        elif key in ("create_response", "interrupt_response"):
            if not isinstance(item, bool):
                raise ConfigError(f"{key} must be a boolean.", param=f"{param}.{key}")
            out[key] = item
        elif key == "eagerness" and item in ("low", "medium", "high", "auto"):
            out[key] = item
        else:
            raise ConfigError(
                f"Unknown parameter: '{param}.{key}'.",
                param=f"{param}.{key}",
                code="unknown_parameter",
            )
    return out


_EAGERNESS_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 400}


def to_pipeline(session: Mapping[str, Any], base: TurnSettings) -> SessionConfig:
    """The pipeline's view of the effective session."""
    audio_in = session["audio"]["input"]
    td = audio_in.get("turn_detection")
    turn = turn_config(base)
    if td is not None and td["type"] == "server_vad":
        turn = TurnConfig(
            threshold=float(td["threshold"]),
            prefix_padding_ms=int(td["prefix_padding_ms"]),
            silence_duration_ms=int(td["silence_duration_ms"]),
            min_speech_ms=turn.min_speech_ms,
            max_utterance_ms=turn.max_utterance_ms,
            interrupt_min_speech_ms=turn.interrupt_min_speech_ms,
        )
    elif td is not None:
        silence = _EAGERNESS_SILENCE_MS.get(str(td.get("eagerness", "auto")), 700)
        turn = TurnConfig(
            threshold=base.threshold,
            prefix_padding_ms=base.prefix_padding_ms,
            silence_duration_ms=silence,
            min_speech_ms=turn.min_speech_ms,
            max_utterance_ms=turn.max_utterance_ms,
            interrupt_min_speech_ms=turn.interrupt_min_speech_ms,
        )
    transcription = audio_in.get("transcription")
    output = session["audio"].get("output", {})
    voice = output.get("voice", DEFAULT_VOICE)
    is_realtime = session["type"] == "realtime"
    return SessionConfig(
        turn=turn,
        vad_enabled=td is not None,
        create_response=bool(td and td.get("create_response", True)) and is_realtime,
        interrupt_response=bool(td and td.get("interrupt_response", True)),
        speculative_stt=base.speculative_stt,
        transcribe_input=transcription is not None,
        language=(transcription or {}).get("language"),
        transcription_prompt=(transcription or {}).get("prompt"),
        output_audio=session.get("output_modalities", ["audio"]) == ["audio"],
        partial_transcripts=bool(session.get("voxdialog", {}).get("partial_transcripts")),
        voice=VoiceSettings(
            voice=voice["id"] if isinstance(voice, dict) else str(voice),
            speed=float(output.get("speed", 1.0)),
        ),
        instructions=str(session.get("instructions", "")),
        tools=()
        if session.get("tool_choice") == "none"
        else parse_tools(session.get("tools") or [], param="session.tools"),
    )


def input_format(session: Mapping[str, Any]) -> WireFormat:
    """The input audio format."""
    return parse_ga_format(session["audio"]["input"]["format"])


def output_format(session: Mapping[str, Any]) -> WireFormat:
    """The output audio format (transcription sessions have none: PCM 24 kHz)."""
    output = session["audio"].get("output")
    return parse_ga_format(output["format"] if output else {"type": "audio/pcm", "rate": 24000})
