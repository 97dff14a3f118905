"""Chat context: the messages an LLM brain sends for one turn, trimmed to a token budget."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from voxdialog.brain.base import BrainTurn, HistoryMessage
from voxdialog.brain.dates import WEEKDAYS
from voxdialog.brain.tasks import TaskRecord
from voxdialog.providers.base import ChatMessage

CHARS_PER_TOKEN = 4
"""The rough size of a token in English text; close enough for a budget."""
TITLES_AT_MOST = 8
"""How many open task titles the context line names."""

_TITLE_CHARS = 80  # a pasted essay as a title must not eat the budget
_ROLES = frozenset(("user", "assistant", "system", "tool"))


def approx_tokens(text: str) -> int:
    """About how many tokens ``text`` is: ``len(text) / 4``, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def task_context(
    open_tasks: Sequence[TaskRecord] | None, *, now: dt.datetime, at_most: int = TITLES_AT_MOST
) -> str:
    """A short line on the date and the open tasks, for the system prompt.

    ``open_tasks`` is None when they could not be read; the line then gives only the date.

    Example:
        "Today is Wednesday 2025-06-11, 09:00. The user has 3 open tasks: “Buy milk”,
        “Water the plants”, “Call mum”."
    """
    weekday = WEEKDAYS[now.weekday()].capitalize()
    line = f"Today is {weekday} {now.date().isoformat()}, {now.strftime('%H:%M')}."
    if open_tasks is None:
        return line
    count = len(open_tasks)
    if count == 0:
        return f"{line} The user has no open tasks."
    titles = [_clip(t.title) for t in open_tasks[:at_most]]
    named = ", ".join(f"“{t}”" for t in titles)
    more = f", and {count - len(titles)} more" if count > len(titles) else ""
    noun = "open task" if count == 1 else "open tasks"
    return f"{line} The user has {count} {noun}: {named}{more}."


def _clip(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1] + "…"


def system_prompt(
    persona: str, *, instructions: str = "", guidance: str = "", context: str = ""
) -> str:
    """The one system message: persona, the session's instructions, tool guidance, context.

    Empty parts are left out; the rest are separated by blank lines.
    """
    parts = (persona, instructions, guidance, context)
    return "\n\n".join(p.strip() for p in parts if p.strip())


def trim_history(
    history: Sequence[HistoryMessage], *, max_messages: int, budget_tokens: int
) -> tuple[HistoryMessage, ...]:
    """The newest messages of ``history`` that fit: at most ``max_messages``, oldest dropped first.

    Messages with no text or an unknown role are skipped. The result is a contiguous run
    ending at the newest message, so the model never sees a gap in the conversation.
    """
    kept: list[HistoryMessage] = []
    left = budget_tokens
    usable = [m for m in history if m.role in _ROLES and (m.text.strip() or m.tool_calls)]
    for message in reversed(usable):
        if len(kept) >= max_messages:
            break
        cost = approx_tokens(message.text)
        if cost > left:
            break
        kept.append(message)
        left -= cost
    # A tool result whose call is not in the kept run (trimmed away, or never made) would be
    # rejected by the model's API.
    called: set[str] = set()
    run: list[HistoryMessage] = []
    for message in reversed(kept):
        called.update(call.id for call in message.tool_calls)
        if message.role != "tool" or message.tool_call_id in called:
            run.append(message)
    return tuple(run)


def build_messages(
    turn: BrainTurn, *, system: str, max_history: int, budget_tokens: int
) -> tuple[ChatMessage, ...]:
    """System prompt, as much recent history as fits, then the user's message.

    The system prompt and the current message are always kept, even over budget; only
    history is dropped (oldest first) to fit ``budget_tokens``.

    Args:
        turn: The user's words and the conversation so far.
        system: The whole system prompt (see ``system_prompt``).
        max_history: At most this many history messages.
        budget_tokens: Approximate tokens for the messages together.
    """
    fixed = approx_tokens(system) + approx_tokens(turn.text)
    history = trim_history(
        turn.history, max_messages=max_history, budget_tokens=max(0, budget_tokens - fixed)
    )
    messages = [ChatMessage(role="system", content=system)] if system else []
    messages.extend(_chat_message(m) for m in history)
    if turn.text.strip():
        messages.append(ChatMessage(role="user", content=turn.text))
    messages.extend(_chat_message(m) for m in turn.followups)
    return tuple(messages)


def _chat_message(message: HistoryMessage) -> ChatMessage:
    return ChatMessage(
        role=message.role,
        content=message.text,
        tool_calls=message.tool_calls,
        tool_call_id=message.tool_call_id,
    )
