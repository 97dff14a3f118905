"""Idempotency keys: the first request with a key is handled, its retries get its answer."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from voxdialog.db.engine import Database
from voxdialog.db.models import IdempotencyKey, utcnow
from voxdialog.db.sealing import seal, unseal

#: How long a key is remembered.
KEY_LIFETIME = dt.timedelta(hours=24)
_PURGE_EVERY_S = 300.0
_last_purge = -_PURGE_EVERY_S


@dataclass(frozen=True, slots=True)
class Claimed:
    """This request is the first with its key: handle it, then ``finish`` or ``release``."""

    row_id: str


@dataclass(frozen=True, slots=True)
class Replay:
    """The key's request was handled: answer with what it got."""

    status: int
    content_type: str | None
    body: str


@dataclass(frozen=True, slots=True)
class InProgress:
    """The key's first request is still being handled (or its outcome was never stored)."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was used for a different request."""


Claim = Claimed | Replay | InProgress | Mismatch


def _context(row_id: str) -> str:
    return f"idempotency_keys.body:{row_id}"


async def claim_key(db: Database, owner: str, key: str, fingerprint: str) -> Claim:
    """Claim ``key`` for this request, or say what became of the request that holds it."""
    await _forget_expired(db)
    row = IdempotencyKey(owner=owner, key=key, fingerprint=fingerprint)
    try:
        async with db.sessions() as session, session.begin():
            session.add(row)
        return Claimed(row.id)
    except IntegrityError:
        pass
    async with db.reads() as session:
        held = await session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
        )
    if held is None:  # expired between the two statements: the caller may simply retry
        return InProgress()
    if held.fingerprint != fingerprint:
        return Mismatch()
    if held.status is None:
        return InProgress()
    return Replay(held.status, held.content_type, unseal(db, held.body or "", _context(held.id)))


async def finish_key(
    db: Database, row_id: str, status: int, content_type: str | None, body: str
) -> None:
    """Store the answer of a claimed request (sealed at rest when a key is configured)."""
    async with db.sessions() as session, session.begin():
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row_id)
            .values(status=status, content_type=content_type, body=seal(db, body, _context(row_id)))
        )


async def release_key(db: Database, row_id: str) -> None:
    """Forget a claim whose request failed on our side, so a retry is handled afresh."""
    async with db.sessions() as session, session.begin():
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))


async def _forget_expired(db: Database) -> None:
    # At most once every few minutes per process: a delete on every request would be a write
    # that every other write queues behind.
    global _last_purge
    now = time.monotonic()
    if now - _last_purge < _PURGE_EVERY_S:
        return
    _last_purge = now
    async with db.sessions() as session, session.begin():
        await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEY_LIFETIME)
        )
