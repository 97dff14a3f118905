"""Request and response bodies of ``/api/agents``.

Turn-taking overrides take their limits from the server's `TurnSettings`, so an agent can
never hold a value the pipeline would refuse. Provider names depend on the server's
configuration and are checked by the route (`voxdialog.api.routes.agents`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from voxdialog.agents.stages import DEFAULT_AGENT
from voxdialog.api.schemas import Strict
from voxdialog.brain.tool_specs import TOOL_NAMES
from voxdialog.db.models import NAME_LENGTH
from voxdialog.db.repos.agents import AgentRecord, name_key
from voxdialog.settings import TurnSettings

MAX_CHAIN = 5
"""Providers an agent may name per stage."""
MAX_SYSTEM_PROMPT = 20_000
MAX_GREETING = 1_000
MAX_DESCRIPTION = 2_000


def _agent_name(name: str) -> str:
    if name.casefold() == DEFAULT_AGENT:
        raise ValueError(f"'{DEFAULT_AGENT}' names the server's own agent")
    if len(name_key(name)) > NAME_LENGTH:
        raise ValueError(f"must be at most {NAME_LENGTH} characters once case-folded")
    return name


def _distinct(names: list[str]) -> list[str]:
    if len(set(names)) != len(names):
        raise ValueError("names must not repeat")
    return names


def _known_tools(names: list[str]) -> list[str]:
    unknown = [name for name in names if name not in TOOL_NAMES]
    if unknown:
        raise ValueError(f"unknown tool '{unknown[0]}'; the tools are {', '.join(TOOL_NAMES)}")
    return names


# "Has a character that is not white space", the same in Python (which strips the value
# first) and in the ECMA regex dialect JSON Schema uses: Python also strips U+001C-U+001F and
# U+0085, and ECMA also counts U+FEFF as space, so neither may be the only character.
NOT_BLANK = r"[^\s\x1c-\x1f\x85\ufeff]"

AgentName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, pattern=NOT_BLANK, max_length=NAME_LENGTH
    ),
    AfterValidator(_agent_name),
]
ProviderName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=NOT_BLANK, max_length=64)
]
ProviderNames = Annotated[
    list[ProviderName],
    Field(max_length=MAX_CHAIN, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]
ToolNames = Annotated[
    list[str],
    Field(
        max_length=len(TOOL_NAMES),
        json_schema_extra={
            "uniqueItems": True,
            "items": {"type": "string", "enum": list(TOOL_NAMES)},
        },
    ),
    AfterValidator(_distinct),
    AfterValidator(_known_tools),
]
SystemPrompt = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SYSTEM_PROMPT)]
Greeting = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, pattern=NOT_BLANK, max_length=MAX_GREETING
    ),
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]


def _json_number(value: object) -> object:
    # JSON true/false and "12" are not numbers; 12.0 is (JSON Schema counts it as an integer).
    if isinstance(value, bool | str):
        raise ValueError("must be a number")
    return value


def _turn_limits(name: str) -> dict[str, Any]:
    """The bounds and description of a `TurnSettings` field, for an optional override of it."""
    info = TurnSettings.model_fields[name]
    limits: dict[str, Any] = {"description": info.description}
    for constraint in info.metadata:
        if isinstance(constraint, annotated_types.Ge):
            limits["ge"] = constraint.ge
        elif isinstance(constraint, annotated_types.Le):
            limits["le"] = constraint.le
    return limits


class AgentVoice(Strict):
    """How the agent speaks."""

    @field_validator("rate", "pitch", "volume", mode="before")
    @classmethod
    def _numbers_only(cls, value: object) -> object:
        return _json_number(value)

    voice: (
        Annotated[
            str,
            StringConstraints(
                strip_whitespace=True, min_length=1, pattern=NOT_BLANK, max_length=64
            ),
        ]
        | None
    ) = Field(None, description="TTS voice name; null = the session's voice.")
    rate: float = Field(
        1.0, ge=0.5, le=2.0, description="Speaking rate, multiplying the session's speed."
    )
    pitch: float = Field(
        0.0,
        ge=-12.0,
        le=12.0,
        description="Semitones up or down, for any TTS (the duration stays the same).",
    )
    volume: float = Field(
        1.0, ge=0.0, le=2.0, description="Gain, multiplying the session's volume."
    )


class TurnDetection(Strict):
    """Overrides of the server's turn taking; null (or absent) keeps the server's value."""

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_only(cls, value: object) -> object:
        return _json_number(value)

    threshold: float | None = Field(None, **_turn_limits("threshold"))
    prefix_padding_ms: int | None = Field(None, **_turn_limits("prefix_padding_ms"))
    silence_duration_ms: int | None = Field(None, **_turn_limits("silence_duration_ms"))
    min_speech_ms: int | None = Field(None, **_turn_limits("min_speech_ms"))
    max_utterance_s: float | None = Field(None, **_turn_limits("max_utterance_s"))
    interrupt_min_speech_ms: int | None = Field(None, **_turn_limits("interrupt_min_speech_ms"))

    def overrides(self) -> dict[str, Any]:
        """Only the values that differ from the server's choice, as stored."""
        return self.model_dump(exclude_none=True)


class AgentIn(Strict):
    """``POST /api/agents``."""

    name: AgentName
    description: Description = ""
    system_prompt: SystemPrompt | None = Field(
        None, description="The persona; null = the server's default prompt."
    )
    llm: ProviderNames = Field(
        default_factory=list, description="LLM providers, in failover order; [] = server's."
    )
    stt: ProviderNames = Field(default_factory=list, description="STT providers; [] = server's.")
    tts: ProviderNames = Field(default_factory=list, description="TTS providers; [] = server's.")
    voice: AgentVoice = Field(default_factory=AgentVoice)
    greeting: Greeting | None = Field(None, description="Said when a session starts.")
    turn_detection: TurnDetection = Field(default_factory=TurnDetection)
    tools: ToolNames = Field(
        default_factory=lambda: list(TOOL_NAMES), description="Server tools enabled (default all)."
    )


class AgentPatch(Strict):
    """``PATCH /api/agents/{id}``: the fields given replace the stored ones.

    ``voice`` and ``turn_detection`` are replaced whole (null resets them);
    ``system_prompt`` and ``greeting`` may be null (server default, no greeting).
    """

    name: AgentName | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    system_prompt: SystemPrompt | None = None
    llm: ProviderNames | SkipJsonSchema[None] = None
    stt: ProviderNames | SkipJsonSchema[None] = None
    tts: ProviderNames | SkipJsonSchema[None] = None
    voice: AgentVoice | None = None
    greeting: Greeting | None = None
    turn_detection: TurnDetection | None = None
    tools: ToolNames | SkipJsonSchema[None] = None

    @field_validator("name", "description", "llm", "stt", "tts", "tools", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the caller sent, in the store's form."""
        sent = self.model_fields_set
        changes: dict[str, Any] = {key: getattr(self, key) for key in sent}
        if "voice" in sent:
            changes["voice"] = (self.voice or AgentVoice()).model_dump()
        if "turn_detection" in sent:
            changes["turn_detection"] = (self.turn_detection or TurnDetection()).overrides()
        return changes


class AgentOut(BaseModel):
    """An agent as every member of its tenant sees it."""

    id: str
    object: Literal["agent"] = "agent"
    name: str
    description: str
    system_prompt: str | None
    llm: list[str]
    stt: list[str]
    tts: list[str]
    voice: AgentVoice
    greeting: str | None
    turn_detection: TurnDetection
    tools: list[str]
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, agent: AgentRecord) -> AgentOut:
        """From the store's record."""
        return cls(
            id=agent.id,
            name=agent.name,
            description=agent.description,
            system_prompt=agent.system_prompt,
            llm=list(agent.llm),
            stt=list(agent.stt),
            tts=list(agent.tts),
            voice=AgentVoice.model_validate(_known(agent.voice, AgentVoice)),
            greeting=agent.greeting,
            turn_detection=TurnDetection.model_validate(
                _known(agent.turn_detection, TurnDetection)
            ),
            tools=list(agent.tools),
            created_by=agent.user_id,
            created_at=agent.created_at,
            updated_at=agent.updated_at,
        )


def _known(stored: Mapping[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Stored keys the model still has (a field removed in a later version is not shown)."""
    return {key: value for key, value in stored.items() if key in model.model_fields}
