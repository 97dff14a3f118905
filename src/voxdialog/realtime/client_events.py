"""Client events, parsed: a discriminated union of pydantic models keyed by ``type``.

A malformed event becomes a ``CommandError`` with the code the hosted service would send
(openai-compat.md §5.2): an unknown ``type`` is ``invalid_value`` with param ``type``, a
missing field ``missing_required_parameter``, a field of the wrong kind ``invalid_value``.
Fields the protocol has but VoxDialog does not use are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from voxdialog.realtime.errors import CommandError

NonEmpty = Annotated[StrictStr, Field(min_length=1)]


def _none_as_empty(value: Any) -> Any:
    # ``"session": null`` / ``"response": null`` mean "no changes", as an omitted field does.
    return {} if value is None else value


Patch = Annotated[dict[str, Any], BeforeValidator(_none_as_empty)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: StrictStr | None = None


class SessionUpdate(_Event):
    """``session.update``: a patch of the session object (checked by session_object.py)."""

    type: Literal["session.update"]
    session: Patch = Field(default_factory=dict)


class AudioAppend(_Event):
    """``input_audio_buffer.append``: base64 audio in the session's input format."""

    type: Literal["input_audio_buffer.append"]
    audio: NonEmpty


class AudioCommit(_Event):
    """``input_audio_buffer.commit``."""

    type: Literal["input_audio_buffer.commit"]


class AudioClear(_Event):
    """``input_audio_buffer.clear``."""

    type: Literal["input_audio_buffer.clear"]


class ItemCreate(_Event):
    """``conversation.item.create`` (the item itself is read by items.py)."""

    type: Literal["conversation.item.create"]
    item: dict[str, Any]
    previous_item_id: StrictStr | None = None


class ItemTruncate(_Event):
    """``conversation.item.truncate``."""

    type: Literal["conversation.item.truncate"]
    item_id: NonEmpty
    content_index: StrictInt = 0
    audio_end_ms: StrictInt


class ItemDelete(_Event):
    """``conversation.item.delete``."""

    type: Literal["conversation.item.delete"]
    item_id: NonEmpty


class ItemRetrieve(_Event):
    """``conversation.item.retrieve``."""

    type: Literal["conversation.item.retrieve"]
    item_id: NonEmpty


class ResponseParams(BaseModel):
    """``response.create``'s ``response``: the per-response overrides VoxDialog honours."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    output_modalities: list[StrictStr] | None = None
    instructions: StrictStr | None = None
    audio: dict[str, Any] | None = None
    tools: list[Any] | None = None
    conversation: StrictStr = "auto"

    @property
    def voice(self) -> str | None:
        """The voice asked for in ``audio.output.voice``, if a name."""
        output = (self.audio or {}).get("output")
        voice = output.get("voice") if isinstance(output, dict) else None
        return voice if isinstance(voice, str) else None


class ResponseCreate(_Event):
    """``response.create``."""

    type: Literal["response.create"]
    response: Annotated[ResponseParams, BeforeValidator(_none_as_empty)] = Field(
        default_factory=ResponseParams
    )


class ResponseCancel(_Event):
    """``response.cancel``."""

    type: Literal["response.cancel"]
    response_id: StrictStr | None = None


class OutputAudioClear(_Event):
    """``output_audio_buffer.clear`` (WebRTC/SIP only; refused on a WebSocket)."""

    type: Literal["output_audio_buffer.clear"]


ClientEvent = Annotated[
    SessionUpdate
    | AudioAppend
    | AudioCommit
    | AudioClear
    | ItemCreate
    | ItemTruncate
    | ItemDelete
    | ItemRetrieve
    | ResponseCreate
    | ResponseCancel
    | OutputAudioClear,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)


def parse_client_event(raw: dict[str, Any]) -> ClientEvent:
    """The typed event; raises CommandError (``raw`` has a string ``type``)."""
    try:
        return _ADAPTER.validate_python(raw)
    except PydanticValidationError as e:
        raise _command_error(raw, e.errors()[0]) from None


def _command_error(raw: dict[str, Any], error: ErrorDetails) -> CommandError:
    if error["type"] == "union_tag_invalid":
        return CommandError(
            "invalid_value",
            f"Invalid value: '{raw['type']}'. Unsupported event type.",
            param="type",
        )
    # loc starts with the event type (the union's tag); the rest is the field's path.
    param = ".".join(str(part) for part in error["loc"][1:]) or "type"
    if error["type"] == "missing":
        return CommandError(
            "missing_required_parameter", f"Missing required parameter: '{param}'.", param=param
        )
    return CommandError(
        "invalid_value", f"Invalid value for '{param}': {error['msg']}.", param=param
    )
