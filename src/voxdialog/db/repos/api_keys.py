"""API keys: issued once in clear, stored as SHA-256, checked on every request."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from voxdialog.db.engine import Database
from voxdialog.db.models import NAME_LENGTH, ApiKey, User, utcnow
from voxdialog.security.principal import Scope

KEY_PREFIX = "vxd_"
_SECRET_BYTES = 30  # 30 random bytes are 40 url-safe characters.
KEY_LENGTH = len(KEY_PREFIX) + 40
DISPLAY_PREFIX_LENGTH = 8
# Writing on every request would turn each authenticated read into a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
#: Keys whose last-used stamp this process is writing now.
_STAMPING: set[str] = set()


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as shown to its owner (never the key itself)."""

    id: str
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def hash_api_key(key: str) -> str:
    """The stored form of ``key``: SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


async def create_api_key(db: Database, scope: Scope, name: str) -> tuple[str, ApiKeyInfo]:
    """Issue a new key for ``scope``.

    Args:
        db: The database.
        scope: The owner of the key.
        name: A label chosen by the owner.

    Returns:
        The key in clear (shown once, never stored) and its stored description.

    Raises:
        ValueError: ``name`` is longer than 200 characters.
    """
    # PostgreSQL text cannot hold NUL; SQLite could, but both must store the same thing.
    label = name.replace("\x00", "").strip()
    if len(label) > NAME_LENGTH:
        raise ValueError(f"API key name must be at most {NAME_LENGTH} characters")
    key = KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    row = ApiKey(
        tenant_id=scope.tenant_id,
        user_id=scope.user_id,
        name=label,
        prefix=key[:DISPLAY_PREFIX_LENGTH],
        key_hash=hash_api_key(key),
        created_at=utcnow(),
    )
    async with db.sessions() as session, session.begin():
        session.add(row)
    return key, _info(row)


async def verify_api_key(db: Database, key: str) -> Scope | None:
    """The scope a presented key acts for, or None (unknown, malformed, revoked, user disabled).

    The lookup is by hash, so response time does not depend on how much of a valid key an
    attacker has guessed. ``last_used_at`` is written at most once a minute per key.
    """
    if len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return None
    digest = hash_api_key(key)
    # A read that takes no write lock: every handshake checks a key, and it must not queue
    # behind the sessions' writes. The rare last-used stamp is its own short write.
    async with db.reads() as session:
        found = (
            await session.execute(
                select(ApiKey, User.disabled)
                .join(User, User.id == ApiKey.user_id)
                .where(ApiKey.key_hash == digest)
            )
        ).first()
    if found is None:
        return None
    row, disabled = found
    if not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None or disabled:
        return None
    await _note_use(db, row.id, row.last_used_at)
    return Scope(tenant_id=row.tenant_id, user_id=row.user_id)


async def _note_use(db: Database, key_id: str, last_used_at: dt.datetime | None) -> None:
    """Stamp ``last_used_at`` at most once a minute per key. A burst of handshakes with one key
    all read the old stamp; only the first of them writes while its write is in flight."""
    now = utcnow()
    if last_used_at is not None and now - last_used_at < LAST_USED_RESOLUTION:
        return
    if key_id in _STAMPING:
        return
    _STAMPING.add(key_id)
    try:
        async with db.sessions() as session, session.begin():
            await session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now)
            )
    finally:
        _STAMPING.discard(key_id)


async def revoke_api_key(db: Database, scope: Scope, key_id: str) -> bool:
    """Revoke one of the scope's keys (the first revocation time is kept).

    Returns:
        True if the key belongs to ``scope`` (now revoked), False otherwise.
    """
    async with db.sessions() as session, session.begin():
        row = await session.scalar(
            select(ApiKey).where(
                ApiKey.id == key_id,
                ApiKey.tenant_id == scope.tenant_id,
                ApiKey.user_id == scope.user_id,
            )
        )
        if row is None:
            return False
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return True


async def list_api_keys(
    db: Database, scope: Scope, *, include_revoked: bool = False
) -> list[ApiKeyInfo]:
    """The scope's keys, oldest first."""
    query = select(ApiKey).where(
        ApiKey.tenant_id == scope.tenant_id, ApiKey.user_id == scope.user_id
    )
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    async with db.sessions() as session:
        rows = await session.scalars(query.order_by(ApiKey.created_at, ApiKey.id))
        return [_info(row) for row in rows]
