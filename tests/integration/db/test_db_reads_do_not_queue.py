"""Reads on the handshake path never wait for a writer (150 sessions connecting at once on
SQLite queued their key checks behind every other write and some failed "database is locked").

On SQLite a `Database.reads()` session begins a deferred transaction that, in WAL mode, sees
the last commit while another connection holds the write lock. Here a writer holds that lock
until the reads are done: a read that took the lock too would wait for it and fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import update

from voxdialog.db.engine import Database
from voxdialog.db.models import ApiKey, Tenant
from voxdialog.db.repos.api_keys import create_api_key, verify_api_key
from voxdialog.db.repos.sessions import get_session, start_session
from voxdialog.db.repos.users import user_is_active
from voxdialog.pipeline.recorder import SessionInfo
from voxdialog.security.principal import Scope

MakeScope = Callable[..., Awaitable[Scope]]


@pytest.mark.only_on("sqlite", reason="the write lock that reads must not take is SQLite's")
async def test_handshake_reads_go_on_while_another_connection_writes(
    db: Database, make_scope: MakeScope
) -> None:
    scope = await make_scope()
    key, _ = await create_api_key(db, scope, "load generator")
    assert await verify_api_key(db, key) == scope  # stamped now: the next minute only reads
    await start_session(db, SessionInfo("sess_r", scope, "local-voice"))
    async with db.sessions() as writer, writer.begin():
        # The write lock is held from here until the reads below have finished.
        await writer.execute(update(Tenant).values(name="renamed"))
        checks = await asyncio.gather(
            *(verify_api_key(db, key) for _ in range(20)),
            user_is_active(db, scope),
            get_session(db, scope, "sess_r"),
        )
    assert checks[:20] == [scope] * 20
    assert checks[20] == (True, "member")
    assert checks[21] is not None


async def test_a_key_check_still_notes_when_the_key_was_last_used(
    db: Database, make_scope: MakeScope
) -> None:
    scope = await make_scope()
    key, info = await create_api_key(db, scope, "laptop")
    async with db.sessions() as session, session.begin():
        await session.execute(update(ApiKey).where(ApiKey.id == info.id).values(last_used_at=None))
    assert await verify_api_key(db, key) == scope
    async with db.reads() as session:
        row = await session.get(ApiKey, info.id)
    assert row is not None
    assert row.last_used_at is not None
