"""Conversation state of one assistant session, and the reply a turn produces."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxdialog.brain.intents import Command, Intent
from voxdialog.brain.tasks import TaskRecord


@dataclass(frozen=True, slots=True)
class PendingAction:
    """An action the assistant asked about ("Did you mean ...?") and waits for a yes to do."""

    intent: Intent  # COMPLETE_TASK, DELETE_TASK, RENAME_TASK or ADD_TASK
    task: TaskRecord | None = None
    new_title: str = ""
    command: Command | None = None  # ADD_TASK: the task to add


@dataclass(slots=True)
class ConversationState:
    """What the assistant remembers between turns of one conversation."""

    last_list: tuple[TaskRecord, ...] = ()
    """The tasks of the last list read out, in order, for "the second one"."""
    last_task: TaskRecord | None = None
    """The task last added or acted on, for "it" and "that one"."""
    pending: PendingAction | None = None
    """An action waiting for yes or no."""
    awaiting_title: Command | None = None
    """An add_task that still needs its title ("What's the task?")."""


@dataclass(slots=True)
class Reply:
    """The outcome of one turn before it is streamed: sentences and what was done."""

    intent: str
    sentences: list[str]
    success: bool
    confidence: float
    entities: dict[str, object] = field(default_factory=dict)
    error: str | None = None
