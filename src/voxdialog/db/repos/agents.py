"""Agents (personas) of a tenant: create, list, look up by id or name, change, delete.

Every query is filtered by the tenant: another tenant's agent is simply not found.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxdialog.brain.tool_specs import TOOL_NAMES
from voxdialog.db.engine import Database
from voxdialog.db.errors import StoreError
from voxdialog.db.models import Agent, utcnow
from voxdialog.security.principal import Scope

#: The fields a caller may set, at creation or in a change.
EDITABLE = frozenset(
    {
        "name",
        "description",
        "system_prompt",
        "llm",
        "stt",
        "tts",
        "voice",
        "greeting",
        "turn_detection",
        "tools",
    }
)


class AgentNameTakenError(StoreError):
    """Another agent of the tenant already has this name (names compare case-insensitively)."""


class AgentNotFoundError(StoreError, LookupError):
    """The agent does not exist in the tenant."""


def name_key(name: str) -> str:
    """The form names are compared in: trimmed and casefolded."""
    return name.strip().casefold()


@dataclass(frozen=True, slots=True)
class AgentFields:
    """What a new agent is made of (see `voxdialog.db.models.Agent` for the meanings)."""

    name: str
    description: str = ""
    system_prompt: str | None = None
    llm: Sequence[str] = ()
    stt: Sequence[str] = ()
    tts: Sequence[str] = ()
    voice: Mapping[str, Any] = field(default_factory=dict)
    greeting: str | None = None
    turn_detection: Mapping[str, Any] = field(default_factory=dict)
    #: The server tools it may use (all of them unless it says otherwise, as in the API).
    tools: Sequence[str] = TOOL_NAMES


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """A stored agent.

    Attributes:
        id: Its id (32 hex characters).
        tenant_id: The tenant it belongs to (every member may use it).
        user_id: Who created it (may change or delete it, as may the tenant's admins).
        name: Display name, unique in the tenant regardless of case.
        description: Free text for people choosing an agent.
        system_prompt: The persona; None means the server's default prompt.
        llm: LLM provider names in chain order; empty means the server's default chain.
        stt: STT provider names; empty means the server's default chain.
        tts: TTS provider names; empty means the server's default chain.
        voice: ``voice``, ``rate``, ``pitch`` and ``volume``.
        greeting: Said when a session starts, if set.
        turn_detection: Overrides of the server's turn-taking settings.
        tools: Names of the server tools the agent may use.
        created_at: When it was created.
        updated_at: When it last changed.
    """

    id: str
    tenant_id: str
    user_id: str
    name: str
    description: str
    system_prompt: str | None
    llm: tuple[str, ...]
    stt: tuple[str, ...]
    tts: tuple[str, ...]
    voice: Mapping[str, Any]
    greeting: str | None
    turn_detection: Mapping[str, Any]
    tools: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime


def _record(row: Agent) -> AgentRecord:
    return AgentRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        name=row.name,
        description=row.description or "",
        system_prompt=row.system_prompt,
        llm=tuple(row.llm or ()),
        stt=tuple(row.stt or ()),
        tts=tuple(row.tts or ()),
        voice=dict(row.voice or {}),
        greeting=row.greeting,
        turn_detection=dict(row.turn_detection or {}),
        tools=tuple(row.tools or ()),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _set(row: Agent, key: str, value: Any) -> None:
    """Write one editable field, in the column's stored form."""
    if key == "name":
        row.name = str(value).strip()
        row.name_key = name_key(row.name)
    elif key in ("llm", "stt", "tts", "tools"):
        setattr(row, key, [str(name) for name in value])
    elif key in ("voice", "turn_detection"):
        setattr(row, key, dict(value or {}))
    elif key == "description":
        row.description = str(value or "")
    else:
        setattr(row, key, value)


async def create_agent(db: Database, principal_scope: Scope, fields: AgentFields) -> AgentRecord:
    """Store a new agent in the caller's tenant, created by the caller.

    Raises:
        AgentNameTakenError: The tenant already has an agent of that name.
    """
    now = utcnow()
    row = Agent(
        tenant_id=principal_scope.tenant_id,
        user_id=principal_scope.user_id,
        created_at=now,
        updated_at=now,
    )
    for key in EDITABLE:
        _set(row, key, getattr(fields, key))
    try:
        async with db.sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            return _record(row)
    except IntegrityError as exc:
        raise AgentNameTakenError(f"an agent named {fields.name!r} already exists") from exc


async def list_agents(
    db: Database, tenant_id: str, limit: int, offset: int = 0, *, after: str | None = None
) -> list[AgentRecord]:
    """The tenant's agents, oldest first.

    Args:
        db: The database.
        tenant_id: Whose agents.
        limit: At most this many.
        offset: Skip this many (after ``after``, when both are given).
        after: Start after the agent with this id (a cursor from an earlier page).

    Raises:
        AgentNotFoundError: ``after`` is not an agent of the tenant.
    """
    query = select(Agent).where(Agent.tenant_id == tenant_id)
    async with db.reads() as session:
        if after is not None:
            cursor = await session.scalar(
                select(Agent).where(Agent.tenant_id == tenant_id, Agent.id == after)
            )
            if cursor is None:
                raise AgentNotFoundError(f"no agent {after!r}")
            query = query.where(
                or_(
                    Agent.created_at > cursor.created_at,
                    and_(Agent.created_at == cursor.created_at, Agent.id > cursor.id),
                )
            )
        rows = await session.scalars(
            query.order_by(Agent.created_at, Agent.id).limit(limit).offset(offset)
        )
        return [_record(row) for row in rows]


async def _find(session: AsyncSession, tenant_id: str, agent_id_or_name: str) -> Agent | None:
    """The agent with this id, else the one with this name, in the tenant."""
    rows = list(
        await session.scalars(
            select(Agent).where(
                Agent.tenant_id == tenant_id,
                or_(Agent.id == agent_id_or_name, Agent.name_key == name_key(agent_id_or_name)),
            )
        )
    )
    # One agent's id may be another's name: the id wins.
    for row in rows:
        if row.id == agent_id_or_name:
            return row
    return rows[0] if rows else None


async def get_agent(db: Database, tenant_id: str, agent_id_or_name: str) -> AgentRecord | None:
    """The tenant's agent with this id, else with this name (any case); None if neither."""
    async with db.reads() as session:
        row = await _find(session, tenant_id, agent_id_or_name)
        return _record(row) if row is not None else None


async def update_agent(
    db: Database, tenant_id: str, agent_id: str, changes: Mapping[str, Any]
) -> AgentRecord | None:
    """Change some fields of the tenant's agent ``agent_id``; None if it is not there.

    Args:
        db: The database.
        tenant_id: The caller's tenant.
        agent_id: The agent's id.
        changes: New values by field name (only names in `EDITABLE`).

    Raises:
        ValueError: ``changes`` names a field that cannot be changed.
        AgentNameTakenError: The new name is another agent's.
    """
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
    try:
        async with db.sessions() as session, session.begin():
            row = await session.scalar(
                select(Agent).where(Agent.tenant_id == tenant_id, Agent.id == agent_id)
            )
            if row is None:
                return None
            for key, value in changes.items():
                _set(row, key, value)
            row.updated_at = utcnow()
            await session.flush()
            return _record(row)
    except IntegrityError as exc:
        raise AgentNameTakenError(f"an agent named {changes.get('name')!r} already exists") from exc


async def delete_agent(db: Database, tenant_id: str, agent_id: str) -> bool:
    """Delete the tenant's agent ``agent_id``; False if it is not there."""
    async with db.sessions() as session, session.begin():
        row = await session.scalar(
            select(Agent).where(Agent.tenant_id == tenant_id, Agent.id == agent_id)
        )
        if row is None:
            return False
        await session.delete(row)
        return True
