"""TaskFinder: which stored task "the second one", "it" or a misheard title points at."""

from __future__ import annotations

from dataclasses import dataclass

from voxdialog.brain import replies
from voxdialog.brain.conversation import ConversationState, Reply
from voxdialog.brain.entities import TaskRef
from voxdialog.brain.intents import Command, Intent
from voxdialog.brain.matching import Match, Verdict, match_task
from voxdialog.brain.tasks import TaskRecord, TaskStore
from voxdialog.security.principal import Scope

_CLOSEST_AT = 50.0  # candidates below this are too far off to name as "the closest"


@dataclass(frozen=True, slots=True)
class Resolved:
    """A task to act on (``ask``: ask first), or the reply to give when there is none."""

    task: TaskRecord | None = None
    score: float = 0.0
    ask: bool = False
    reply: Reply | None = None


def query_of(target: TaskRef) -> str | None:
    """The main heard title of a reference, if it was one."""
    return target.queries[0] if target.queries else None


class TaskFinder:
    """Resolves task references for one scope, using the conversation's memory.

    Args:
        store: Where tasks live.
        scope: Whose tasks these are.
        state: The conversation's memory (last list read out, last task acted on).
    """

    def __init__(self, store: TaskStore, scope: Scope, state: ConversationState) -> None:
        """Keep what resolving needs."""
        self._store = store
        self._scope = scope
        self._state = state

    async def resolve(self, target: TaskRef, command: Command, *, include_done: bool) -> Resolved:
        """Find the task ``target`` points at, for ``command`` (whose intent the replies use).

        Titles are matched fuzzily against the open tasks (and done ones with
        ``include_done``); positions and "it" are checked against the store as it is now.
        """
        if target.ordinal is not None:
            return await self._current(await self._by_position(target.ordinal, command), command)
        if target.pronoun:
            task = self._state.last_task
            if task is None and len(self._state.last_list) == 1:
                task = self._state.last_list[0]
            if task is None:
                return Resolved(
                    reply=Reply(
                        command.intent, ["Which task do you mean?"], False, command.confidence
                    )
                )
            return await self._current(Resolved(task=task, score=100.0), command)
        if not target.queries:
            return Resolved(
                reply=Reply(command.intent, ["Which task do you mean?"], False, command.confidence)
            )
        tasks = await self._store.list_tasks(self._scope, include_done=include_done)
        found = match_task(target.queries, tasks)
        best = found.best
        if found.verdict is Verdict.NONE or best is None:
            return Resolved(reply=self._not_found(command, target, found, has_tasks=bool(tasks)))
        return Resolved(task=best.task, score=best.score, ask=found.verdict is Verdict.ASK)

    async def _by_position(self, ordinal: int, command: Command) -> Resolved:
        listed = self._state.last_list
        if not listed:
            # Nothing was read out yet: positions count in the order a list would be read.
            listed = tuple(await self._store.list_tasks(self._scope))
            self._state.last_list = listed
        # "The last one" is the last one read out, not one hidden in "and four more".
        heard = min(len(listed), replies.READ_AT_MOST)
        index = ordinal - 1 if ordinal > 0 else heard + ordinal
        if not 0 <= index < len(listed):
            size = replies.count_phrase(len(listed))
            sentence = f"There's no such task; the list has {size}."
            if not listed:
                sentence = "You don't have any open tasks."
            return Resolved(
                reply=Reply(
                    command.intent, [sentence], False, command.confidence, {"ordinal": ordinal}
                )
            )
        return Resolved(task=listed[index], score=100.0)

    async def _current(self, resolved: Resolved, command: Command) -> Resolved:
        """The remembered task as stored now: it may be gone, or already done."""
        if resolved.task is None:
            return resolved
        tasks = await self._store.list_tasks(self._scope, include_done=True)
        task = next((t for t in tasks if t.id == resolved.task.id), None)
        entities: dict[str, object] = {"title": resolved.task.title, "task_id": resolved.task.id}
        if task is None:
            sentence = f"I can't find {replies.quote(resolved.task.title)} anymore."
            return Resolved(
                reply=Reply(command.intent, [sentence], False, command.confidence, entities)
            )
        if task.done and command.intent is Intent.COMPLETE_TASK:
            sentence = f"You already finished {replies.quote(task.title)}."
            return Resolved(
                reply=Reply(command.intent, [sentence], True, command.confidence, entities)
            )
        return Resolved(task=task, score=resolved.score)

    def _not_found(
        self, command: Command, target: TaskRef, found: Match, *, has_tasks: bool
    ) -> Reply:
        query = query_of(target) or ""
        entities: dict[str, object] = {"query": query}
        if not has_tasks:
            return Reply(
                command.intent,
                ["You don't have any open tasks."],
                False,
                command.confidence,
                entities,
            )
        sentences = [f"Sorry, I couldn't find {replies.quote(query)}."]
        near = [c.task.title for c in found.ranked[:2] if c.score >= _CLOSEST_AT]
        if len(near) == 2 and found.ranked[1].score < found.ranked[0].score - 15:
            near = near[:1]
        if near:
            sentences.append(
                f"The closest {'one is' if len(near) == 1 else 'ones are'} {replies.closest(near)}."
            )
        else:
            sentences.append("Say “what are my tasks” to hear your list.")
        return Reply(command.intent, sentences, False, 0.0, entities)
