"""The conversation of one session: an ordered, bounded list of items."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from voxdialog.brain.base import HistoryMessage
from voxdialog.providers.base import ToolCall


@dataclass(frozen=True, slots=True)
class ItemView:
    """An item as it was at one moment: what events carry, so nothing changes after sending."""

    id: str
    type: str
    role: str
    kind: str
    status: str
    text: str | None
    audio: bytes | None
    audio_ms: float
    call_id: str | None
    name: str | None
    arguments: str | None
    output: str | None
    timings: Mapping[str, float]


@dataclass(slots=True)
class Item:
    """A conversation item (message, function call or function call output).

    ``kind`` is the content type: ``input_audio``, ``input_text``, ``output_audio`` or
    ``output_text`` for messages. Items are the conversation's own working state; whatever
    leaves the session is a ``snapshot()``.
    """

    id: str
    type: str = "message"
    role: str = "user"
    kind: str = "input_text"
    status: str = "completed"
    text: str | None = None
    audio: bytes | None = None  # PCM16 at the pipeline rate (user audio) or output rate
    audio_ms: float = 0.0
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: Clock time the person stopped speaking (a spoken turn), until a reply marks latency.
    speech_ended_at: float | None = None

    def snapshot(self) -> ItemView:
        """This item as it is now, frozen."""
        return ItemView(
            id=self.id,
            type=self.type,
            role=self.role,
            kind=self.kind,
            status=self.status,
            text=self.text,
            audio=self.audio,
            audio_ms=self.audio_ms,
            call_id=self.call_id,
            name=self.name,
            arguments=self.arguments,
            output=self.output,
            timings=MappingProxyType(dict(self.timings)),
        )


class Conversation:
    """Ordered items with lookup by id; the oldest items fall off past ``max_items``."""

    def __init__(self, *, max_items: int = 200) -> None:
        self._items: list[Item] = []
        self._max = max_items

    def __iter__(self) -> Iterator[Item]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def get(self, item_id: str) -> Item | None:
        """The item with ``item_id``, if present."""
        return next((i for i in self._items if i.id == item_id), None)

    def last_message(self, role: str) -> Item | None:
        """The newest message item of ``role`` (``user`` or ``assistant``)."""
        return next(
            (i for i in reversed(self._items) if i.type == "message" and i.role == role), None
        )

    def last_id(self) -> str | None:
        """Id of the newest item."""
        return self._items[-1].id if self._items else None

    def add(self, item: Item, *, previous_item_id: str | None = None) -> str | None:
        """Insert after ``previous_item_id`` (``"root"`` = first; None = at the end).

        Returns the id of the item it now follows. Raises KeyError for an unknown previous id.
        """
        if previous_item_id is None:
            prev = self.last_id()
            self._items.append(item)
        elif previous_item_id == "root":
            prev = None
            self._items.insert(0, item)
        else:
            index = next((n for n, i in enumerate(self._items) if i.id == previous_item_id), None)
            if index is None:
                raise KeyError(previous_item_id)
            prev = previous_item_id
            self._items.insert(index + 1, item)
        while len(self._items) > self._max:
            self._items.pop(0)
        return prev

    def add_user_audio(
        self, item_id: str, clip: bytes, *, audio_ms: float, timings: dict[str, float], keep: int
    ) -> tuple[Item, str | None]:
        """A user turn's audio as a new item at the end; returns it and the id it follows.

        Raw user audio is large (32 kB a second): only the newest ``keep`` items keep theirs,
        so a long session's memory stays bounded. Their transcripts stay.
        """
        item = Item(
            id=item_id,
            role="user",
            kind="input_audio",
            audio=clip,
            audio_ms=audio_ms,
            timings=timings,
        )
        prev = self.add(item)
        with_audio = [i for i in self._items if i.audio is not None]
        for old in with_audio[:-keep]:
            old.audio = None
        return item, prev

    def delete(self, item_id: str) -> bool:
        """Remove an item; False if unknown."""
        item = self.get(item_id)
        if item is None:
            return False
        self._items.remove(item)
        return True

    def history(self, *, limit: int = 20) -> tuple[HistoryMessage, ...]:
        """The last ``limit`` messages (with text, or tool calls and outputs), oldest first."""
        messages: list[HistoryMessage] = []
        for item in self._items:
            if item.type == "message" and item.text:
                messages.append(HistoryMessage(role=item.role, text=item.text))
            elif item.type == "function_call" and item.call_id and item.name:
                call = ToolCall(id=item.call_id, name=item.name, arguments=item.arguments or "{}")
                messages.append(HistoryMessage(role="assistant", text="", tool_calls=(call,)))
            elif item.type == "function_call_output" and item.call_id:
                messages.append(
                    HistoryMessage(role="tool", text=item.output or "", tool_call_id=item.call_id)
                )
        return tuple(messages[-limit:])
