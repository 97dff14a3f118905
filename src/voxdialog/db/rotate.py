"""Re-encrypt stored content (messages, voice commands, task titles) with the current key.

What ``voxdialog rotate-key`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select

from voxdialog.db.engine import Database
from voxdialog.db.models import Message, Task, VoiceCommand
from voxdialog.db.sealing import (
    command_context,
    message_context,
    needs_rotation,
    seal,
    seal_json,
    task_title_context,
    unseal,
    unseal_json,
)

_BATCH = 500
_Row = TypeVar("_Row", Message, VoiceCommand, Task)


@dataclass(frozen=True, slots=True)
class RotationReport:
    """How many rows were re-encrypted."""

    messages: int
    commands: int
    tasks: int = 0


async def rotate_content(db: Database) -> RotationReport:
    """Re-encrypt every message, voice command and task title not sealed with the current key.

    Plain rows (written before a key was set) are sealed too. Each batch commits on its own,
    so a run that stops part-way can simply be run again.
    """
    if db.cipher is None:
        raise ValueError("no encryption key is configured (set VOXDIALOG_ENCRYPTION_KEY)")
    return RotationReport(
        await _rotate_messages(db), await _rotate_commands(db), await _rotate_tasks(db)
    )


async def _rotate_messages(db: Database) -> int:
    def reseal(row: Message) -> bool:
        if not needs_rotation(db, row.text):
            return False
        context = message_context(row.session_id, row.item_id)
        row.text = seal(db, unseal(db, row.text, context), context)
        return True

    return await _rotate(db, Message, reseal)


async def _rotate_commands(db: Database) -> int:
    def reseal(row: VoiceCommand) -> bool:
        if not needs_rotation(db, row.text):
            return False
        _reseal_command(db, row)
        return True

    return await _rotate(db, VoiceCommand, reseal)


async def _rotate_tasks(db: Database) -> int:
    def reseal(row: Task) -> bool:
        if not needs_rotation(db, row.title):
            return False
        context = task_title_context(row.id)
        row.title = seal(db, unseal(db, row.title, context), context)
        return True

    return await _rotate(db, Task, reseal)


async def _rotate(db: Database, table: type[_Row], reseal: Callable[[_Row], bool]) -> int:
    """Walk ``table`` by id in batches, each its own transaction; count the rows resealed."""
    done = 0
    after = ""
    while True:
        async with db.sessions() as session, session.begin():
            rows = list(
                await session.scalars(
                    select(table).where(table.id > after).order_by(table.id).limit(_BATCH)
                )
            )
            done += sum(1 for row in rows if reseal(row))
        if len(rows) < _BATCH:
            return done
        after = rows[-1].id


def _reseal_command(db: Database, row: VoiceCommand) -> None:
    text_ctx = command_context(row.id, "text")
    row.text = seal(db, unseal(db, row.text, text_ctx), text_ctx)
    entities_ctx = command_context(row.id, "entities")
    row.entities = seal_json(db, unseal_json(db, row.entities, entities_ctx), entities_ctx)
    if row.error is not None:
        error_ctx = command_context(row.id, "error")
        row.error = seal(db, unseal(db, row.error, error_ctx), error_ctx)
