"""TaskAssistant: the built-in, offline brain that keeps a spoken to-do list."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping

from voxdialog.brain import replies
from voxdialog.brain.actions import TaskActions
from voxdialog.brain.base import BrainEvent, BrainTurn, CommandOutcome, ReplyText
from voxdialog.brain.conversation import ConversationState, PendingAction, Reply
from voxdialog.brain.intents import Command, Intent, parse_command, title_answer
from voxdialog.brain.tasks import TaskStore
from voxdialog.security.principal import Scope

log = logging.getLogger(__name__)

_SMALL_TALK = {
    Intent.GREETING: ["Hello.", "What can I do for you?"],
    Intent.THANKS: ["You're welcome."],
    Intent.GOODBYE: ["Goodbye.", "Talk to you soon."],
    Intent.HELP: list(replies.HELP),
}


#: The LLM tool that does what each action intent does: an agent enables actions by tool name.
INTENT_TOOLS: Mapping[Intent, str] = {
    Intent.ADD_TASK: "create_task",
    Intent.LIST_TASKS: "list_tasks",
    Intent.COUNT_TASKS: "list_tasks",
    Intent.COMPLETE_TASK: "complete_task",
    Intent.DELETE_TASK: "delete_task",
    Intent.RENAME_TASK: "rename_task",
    Intent.CREATE_PROJECT: "create_project",
}


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


class TaskAssistant:
    """The built-in task assistant: intents and actions on tasks and projects, no LLM.

    It understands short spoken commands as Whisper hears them, misrecognitions included
    ("add a test to call the dentist on Friday"), and acts through a ``TaskStore``.

    Args:
        store: Tasks and projects; shared by all sessions, filtered by each session's scope.
        clock: The user's local time, for "today" and "tomorrow" (defaults to the system's).
        tools: The task tools (by their LLM tool names) whose actions it may take, for an
            agent that enabled only some; ``None`` means all. Other actions are declined aloud.

    Example:
        >>> assistant = TaskAssistant(MemoryTaskStore())
        >>> session = assistant.open_session(Scope("tenant", "user"))
        >>> # async for event in session.respond(BrainTurn("add a task to buy milk")): ...
    """

    name = "assistant"

    def __init__(
        self,
        store: TaskStore,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        tools: Collection[str] | None = None,
    ) -> None:
        """Keep the store and the clock; sessions are cheap."""
        self._store = store
        self._clock = clock or _local_now
        self._tools = None if tools is None else frozenset(tools)

    def open_session(self, scope: Scope) -> AssistantSession:
        """Start a conversation for ``scope``."""
        return AssistantSession(self._store, scope, clock=self._clock, tools=self._tools)


class AssistantSession:
    """One conversation with the task assistant.

    Remembers the last list read out (so "complete the second one" works), the last task
    acted on ("delete it"), and a pending yes/no question ("Did you mean ...?").
    """

    def __init__(
        self,
        store: TaskStore,
        scope: Scope,
        *,
        clock: Callable[[], dt.datetime],
        tools: frozenset[str] | None = None,
    ) -> None:
        """Start with an empty memory."""
        self.scope = scope
        self._tools = tools
        self.state = ConversationState()
        self._clock = clock
        self._actions = TaskActions(store, scope, self.state)

    async def respond(self, turn: BrainTurn) -> AsyncIterator[BrainEvent]:
        """Answer one turn: short spoken sentences, then exactly one ``CommandOutcome``."""
        started = time.perf_counter()
        try:
            reply = await self._reply(turn.text)
        except Exception as e:  # a bug must cost one answer, never the conversation
            log.error("assistant turn failed", exc_info=True)
            reply = Reply(Intent.UNKNOWN, list(replies.INTERNAL_ERROR), False, 0.0, {}, repr(e))
        outcome = CommandOutcome(
            intent=str(reply.intent),
            confidence=max(0.0, min(1.0, reply.confidence)),
            success=reply.success,
            entities=dict(reply.entities),
            error=reply.error,
            processing_ms=(time.perf_counter() - started) * 1000.0,
        )
        for i, sentence in enumerate(reply.sentences):
            # Pieces are concatenated downstream, so later sentences carry their own space.
            yield ReplyText(sentence if i == 0 else f" {sentence}")
        yield outcome

    async def _reply(self, text: str) -> Reply:
        now = self._clock()
        today = now.date()
        state = self.state
        command = parse_command(
            text, today=today, now=now.time(), expecting_answer=state.pending is not None
        )
        if state.awaiting_title is not None:
            awaited, state.awaiting_title = state.awaiting_title, None
            if command.intent is Intent.UNKNOWN or (
                command.intent is Intent.ADD_TASK and command.confidence < 0.6
            ):
                command = _with_title(awaited, title_answer(text, today=today, now=now.time()))
        pending, state.pending = state.pending, None
        try:
            if command.intent is Intent.CONFIRM:
                return await self._answer(command, pending, today=today)
            return await self._act(command, today=today)
        except Exception as e:  # the store failed; CancelledError is no Exception and passes
            log.warning(
                "task store call failed", extra={"intent": str(command.intent)}, exc_info=True
            )
            return Reply(
                command.intent,
                list(replies.STORE_ERROR),
                False,
                command.confidence,
                {},
                f"{type(e).__name__}: {e}",
            )

    async def _act(self, command: Command, *, today: dt.date) -> Reply:
        tool = INTENT_TOOLS.get(command.intent)
        if tool is not None and self._tools is not None and tool not in self._tools:
            return Reply(
                command.intent,
                list(replies.NOT_ENABLED),
                False,
                command.confidence,
                {"tool_disabled": tool},
            )
        actions = self._actions
        match command.intent:
            case Intent.ADD_TASK:
                return await actions.add(command, today=today)
            case Intent.LIST_TASKS | Intent.COUNT_TASKS:
                return await actions.list_or_count(command, today=today)
            case Intent.COMPLETE_TASK | Intent.DELETE_TASK:
                return await actions.complete_or_delete(command)
            case Intent.RENAME_TASK:
                return await actions.rename(command)
            case Intent.CREATE_PROJECT:
                return await actions.create_project(command)
            case Intent.GREETING | Intent.THANKS | Intent.GOODBYE | Intent.HELP:
                return Reply(
                    command.intent, list(_SMALL_TALK[command.intent]), True, command.confidence
                )
            case _:
                return _unknown(command)

    async def _answer(
        self, command: Command, pending: PendingAction | None, *, today: dt.date
    ) -> Reply:
        entities: dict[str, object] = {"answer": command.answer}
        if pending is None:
            sentence = (
                "Okay." if command.answer == "no" else "There's nothing to confirm right now."
            )
            return Reply(
                Intent.CONFIRM, [sentence], command.answer == "no", command.confidence, entities
            )
        entities["action"] = str(pending.intent)
        if command.answer == "no":
            sentence = (
                "Okay, I won't add it."
                if pending.intent is Intent.ADD_TASK
                else "Okay, I'll leave it."
            )
            return Reply(Intent.CONFIRM, [sentence], True, command.confidence, entities)
        if pending.intent is Intent.ADD_TASK and pending.command is not None:
            confirmed = dataclasses.replace(pending.command, confidence=command.confidence)
            done = await self._actions.add_now(confirmed, today=today)
        else:
            done = await self._actions.perform(pending, confidence=command.confidence, query=None)
        return Reply(
            Intent.CONFIRM,
            done.sentences,
            done.success,
            command.confidence,
            {**entities, **done.entities},
            done.error,
        )


def _with_title(awaited: Command, answer: Command) -> Command:
    """The add_task that waited for a title, completed by the answer's title and details."""
    return dataclasses.replace(
        awaited,
        title=answer.title,
        confidence=max(awaited.confidence, 0.7),
        due=answer.due if answer.due.date is not None else awaited.due,
        priority=answer.priority or awaited.priority,
        project=answer.project or awaited.project,
    )


def _unknown(command: Command) -> Reply:
    if command.unsupported:
        sentences = [
            "Sorry, I can only change a task's name for now.",
            "You can say: rename buy milk to buy oat milk.",
        ]
    else:
        sentences = list(replies.DIDNT_CATCH)
    return Reply(
        Intent.UNKNOWN,
        sentences,
        False,
        command.confidence,
        {"unsupported": command.unsupported} if command.unsupported else {},
    )
