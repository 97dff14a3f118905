"""The pipeline's `TurnRecorder`, writing to the database."""

from __future__ import annotations

from voxdialog.brain.base import CommandOutcome
from voxdialog.db.engine import Database
from voxdialog.db.repos import sessions
from voxdialog.pipeline.recorder import MessageRecord, SessionInfo


class SqlTurnRecorder:
    """`TurnRecorder` on the database.

    Every call runs in its own short transaction on its own `AsyncSession` and commits before
    it returns, so concurrent voice sessions can share one recorder.
    """

    def __init__(self, db: Database) -> None:
        """Record into ``db``."""
        self._db = db

    async def session_started(self, info: SessionInfo) -> None:
        """Insert the session row, status "active"."""
        await sessions.start_session(self._db, info)

    async def session_ended(self, session_id: str) -> None:
        """Set the end time and status "ended"."""
        await sessions.end_session(self._db, session_id)

    async def message(self, record: MessageRecord) -> None:
        """Insert the message, or replace the one with the same ``item_id``."""
        await sessions.save_message(self._db, record)

    async def message_deleted(self, session_id: str, item_id: str) -> None:
        """Remove the message (nothing happens if it was never stored)."""
        await sessions.delete_message(self._db, session_id, item_id)

    async def command(
        self, session_id: str, item_id: str, text: str, outcome: CommandOutcome
    ) -> None:
        """Store a voice command of the session."""
        await sessions.record_command(
            self._db, session_id, item_id=item_id, text=text, outcome=outcome
        )
