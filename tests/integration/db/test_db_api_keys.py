"""API keys: issue, verify, revoke, list; the key itself is never stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update

from voxdialog.db.engine import Database
from voxdialog.db.models import ApiKey, Base, utcnow
from voxdialog.db.repos.api_keys import (
    create_api_key,
    hash_api_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)
from voxdialog.security.principal import Scope

MakeScope = Callable[..., Awaitable[Scope]]


@pytest.fixture
async def scope(make_scope: MakeScope) -> Scope:
    return await make_scope()


async def _set_last_used(db: Database, key_id: str, when: dt.datetime | None) -> None:
    async with db.sessions() as session, session.begin():
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))


async def test_created_key_verifies_to_its_scope(db: Database, scope: Scope) -> None:
    key, info = await create_api_key(db, scope, "laptop")
    assert key.startswith("vxd_")
    assert len(key) == 44
    assert info.prefix == key[:8]
    assert (info.name, info.revoked_at, info.last_used_at) == ("laptop", None, None)
    assert await verify_api_key(db, key) == scope


async def test_key_names_are_stored_without_nul_characters(db: Database, scope: Scope) -> None:
    _, info = await create_api_key(db, scope, " lap\x00top ")
    assert info.name == "laptop"
    assert [k.name for k in await list_api_keys(db, scope)] == ["laptop"]


async def test_every_key_is_different(db: Database, scope: Scope) -> None:
    keys = {(await create_api_key(db, scope, f"k{n}"))[0] for n in range(5)}
    assert len(keys) == 5


@pytest.mark.parametrize("change", ["last character", "prefix", "truncated", "empty"])
async def test_a_wrong_or_malformed_key_verifies_to_nothing(
    db: Database, scope: Scope, change: str
) -> None:
    key, _ = await create_api_key(db, scope, "laptop")
    wrong = {
        "last character": key[:-1] + ("A" if key[-1] != "A" else "B"),
        "prefix": "sk_" + key[4:] + "x",
        "truncated": key[:-1],
        "empty": "",
    }[change]
    assert await verify_api_key(db, wrong) is None


async def test_a_revoked_key_verifies_to_nothing(db: Database, scope: Scope) -> None:
    key, info = await create_api_key(db, scope, "old phone")
    assert await revoke_api_key(db, scope, info.id)
    assert await verify_api_key(db, key) is None
    assert await revoke_api_key(db, scope, info.id)
    assert await list_api_keys(db, scope) == []
    [listed] = await list_api_keys(db, scope, include_revoked=True)
    assert listed.revoked_at is not None


async def test_keys_of_a_disabled_user_verify_to_nothing(
    db: Database, make_scope: MakeScope
) -> None:
    blocked = await make_scope(disabled=True)
    key, _ = await create_api_key(db, blocked, "laptop")
    assert await verify_api_key(db, key) is None


async def test_a_user_cannot_revoke_or_list_another_users_keys(
    db: Database, make_scope: MakeScope, scope: Scope
) -> None:
    neighbour = await make_scope(tenant_id=scope.tenant_id)
    key, info = await create_api_key(db, scope, "mine")
    assert not await revoke_api_key(db, neighbour, info.id)
    assert await list_api_keys(db, neighbour, include_revoked=True) == []
    assert await verify_api_key(db, key) == scope
    assert [k.id for k in await list_api_keys(db, scope)] == [info.id]


async def test_last_used_is_written_at_most_once_a_minute(db: Database, scope: Scope) -> None:
    key, info = await create_api_key(db, scope, "laptop")
    await verify_api_key(db, key)
    [first] = await list_api_keys(db, scope)
    assert first.last_used_at is not None

    await verify_api_key(db, key)
    [unchanged] = await list_api_keys(db, scope)
    assert unchanged.last_used_at == first.last_used_at

    long_ago = utcnow() - dt.timedelta(minutes=5)
    await _set_last_used(db, info.id, long_ago)
    await verify_api_key(db, key)
    [refreshed] = await list_api_keys(db, scope)
    assert refreshed.last_used_at is not None
    assert refreshed.last_used_at > long_ago + dt.timedelta(minutes=4)


async def test_the_plaintext_key_is_stored_in_no_column_of_any_table(
    db: Database, scope: Scope
) -> None:
    key, _ = await create_api_key(db, scope, "laptop")
    await verify_api_key(db, key)
    async with db.sessions() as session:
        rows = [
            str(value)
            for table in Base.metadata.sorted_tables
            for row in (await session.execute(select(table))).all()
            for value in row
        ]
    stored = "\n".join(rows)
    assert hash_api_key(key) in stored  # the scan does see stored values
    assert key not in stored
    assert key[4:] not in stored
    assert key[4:12] not in stored  # nor a chunk of the secret beyond the display prefix


@pytest.mark.only_on("sqlite", reason="scans the database files, which only SQLite lets us read")
async def test_the_plaintext_key_is_never_written_to_the_database_files(
    db: Database, db_path: Path, scope: Scope
) -> None:
    key, _ = await create_api_key(db, scope, "laptop")
    await verify_api_key(db, key)

    def database_bytes() -> bytes:
        files = sorted(db_path.parent.glob(db_path.name + "*"))
        assert files
        return b"".join(f.read_bytes() for f in files)

    # Read both while connections are open (data still in the WAL) and after closing.
    while_open = database_bytes()
    await db.close()
    after_close = database_bytes()
    for content in (while_open, after_close):
        assert hash_api_key(key).encode() in content  # the scan does see stored values
        assert key.encode() not in content
        assert key[4:].encode() not in content
