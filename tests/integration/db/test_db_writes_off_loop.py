"""A live session's write commits without the event loop (SQLite: one writer thread).

Through the async driver every statement of a transaction was a round trip through the event
loop; a loop busy with 50 sessions stretched each transaction, and every other writer of the
file waited for the lock it held (p99 end of speech to first audio over 2 s). `Database.write`
runs the whole transaction, start to commit, in one writer thread: here the loop is blocked
right after the write starts, and the row is committed (seen by another connection) before the
loop runs again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.engine import make_url

from voxdialog.db.engine import Database
from voxdialog.db.repos.sessions import end_session, list_messages, save_message, start_session
from voxdialog.pipeline.recorder import MessageRecord, SessionInfo
from voxdialog.security.principal import Scope

MakeScope = Callable[..., Awaitable[Scope]]


def _committed_while_blocked(path: str, item_id: str, *, within_s: float) -> bool:
    """Block the calling (event loop) thread, polling another connection for the row."""
    deadline = time.monotonic() + within_s
    with sqlite3.connect(path) as other:
        while time.monotonic() < deadline:
            found = other.execute("SELECT 1 FROM messages WHERE item_id = ?", (item_id,)).fetchone()
            if found:
                return True
            time.sleep(0.01)
    return False


@pytest.mark.only_on("sqlite", reason="the writer thread is how SQLite writes")
async def test_a_message_commits_while_the_event_loop_is_blocked(
    db: Database, make_scope: MakeScope
) -> None:
    scope = await make_scope()
    await start_session(db, SessionInfo("sess_w", scope, "local-voice"))
    record = MessageRecord("sess_w", "item_w", "user", "hello", "completed")
    write = asyncio.ensure_future(save_message(db, record))
    await asyncio.sleep(0)  # the write is handed to its thread
    path = make_url(db.url).database
    assert path is not None
    assert _committed_while_blocked(path, "item_w", within_s=10.0)
    await write


async def test_writes_keep_their_order_and_errors(db: Database, make_scope: MakeScope) -> None:
    scope = await make_scope()
    await start_session(db, SessionInfo("sess_o", scope, "local-voice"))
    records = [
        MessageRecord("sess_o", f"item_{i}", "user", f"turn {i}", "completed") for i in range(20)
    ]
    await asyncio.gather(*(save_message(db, r) for r in records))
    stored = await list_messages(db, scope, "sess_o")
    assert sorted(m.seq for m in stored) == list(range(1, 21))
    with pytest.raises(Exception, match="never started"):
        await save_message(db, MessageRecord("sess_nope", "i", "user", "x", "completed"))
    await end_session(db, "sess_o")
