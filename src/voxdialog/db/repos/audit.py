"""The audit log: who signed in, out, failed, changed keys or administered whom."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from voxdialog.db.engine import Database
from voxdialog.db.models import AuditEvent, utcnow

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit event as listed to admins."""

    id: str
    tenant_id: str | None
    user_id: str | None
    action: str
    outcome: str
    ip: str | None
    detail: Mapping[str, Any]
    created_at: dt.datetime


async def record_audit(
    db: Database,
    action: str,
    outcome: str,
    *,
    tenant_id: str | None = None,
    user_id: str | None = None,
    ip: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append an audit event. ``detail`` must never hold secrets or content."""
    async with db.sessions() as session, session.begin():
        session.add(
            AuditEvent(
                tenant_id=tenant_id,
                user_id=user_id,
                action=action[:64],
                outcome=outcome,
                ip=(ip or None) and ip[:64],
                detail=dict(detail or {}),
                created_at=utcnow(),
            )
        )


async def list_audit(
    db: Database, tenant_id: str | None, *, limit: int = 100, offset: int = 0
) -> list[AuditRecord]:
    """Newest events first; one tenant's unless ``tenant_id`` is None (operator view)."""
    query = select(AuditEvent)
    if tenant_id is not None:
        query = query.where(AuditEvent.tenant_id == tenant_id)
    async with db.sessions() as session:
        rows = await session.scalars(
            query.order_by(AuditEvent.created_at.desc(), AuditEvent.id).limit(limit).offset(offset)
        )
        return [
            AuditRecord(
                r.id, r.tenant_id, r.user_id, r.action, r.outcome, r.ip, r.detail, r.created_at
            )
            for r in rows
        ]
