"""Request and response bodies of ``/api/admin`` (users, tenants, live sessions, health)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool

from voxdialog.api.schemas import Name, Password, Strict
from voxdialog.db.repos.audit import AuditRecord
from voxdialog.db.repos.users import TenantRecord
from voxdialog.live import LiveSession

Role = Literal["admin", "member"]


class AdminUserIn(Strict):
    """``POST /api/admin/users``: a new member or admin of the caller's tenant."""

    email: EmailStr = Field(max_length=320)
    password: Password
    display_name: Name | None = None
    role: Role = "member"


class AdminUserPatch(Strict):
    """``PATCH /api/admin/users/{user_id}``: only the fields given change."""

    role: Role | None = None
    disabled: StrictBool | None = None
    display_name: Name | None = None


class TenantOut(BaseModel):
    """A tenant with its user, stored voice-session and open-session counts."""

    id: str
    name: str
    created_at: dt.datetime
    users: int
    voice_sessions: int
    live_sessions: int

    @classmethod
    def of(cls, tenant: TenantRecord, live_sessions: int) -> TenantOut:
        """From the store's record and the number of its sessions open now."""
        return cls(
            id=tenant.id,
            name=tenant.name,
            created_at=tenant.created_at,
            users=tenant.users,
            voice_sessions=tenant.voice_sessions,
            live_sessions=live_sessions,
        )


class LiveSessionOut(BaseModel):
    """An open Realtime session: who, which agent, how it goes; never what is said."""

    session_id: str
    tenant_id: str
    user_id: str
    agent: str
    agent_name: str
    client: str
    state: str
    started_at: dt.datetime
    duration_s: float
    turns: int
    last_turn_ms: float | None
    worker: int = Field(0, description="The worker process that holds it (serve --workers).")

    @classmethod
    def of(cls, live: LiveSession) -> LiveSessionOut:
        """From the live registry's entry."""
        return cls(
            session_id=live.session_id,
            tenant_id=live.tenant_id,
            user_id=live.user_id,
            agent=live.agent,
            agent_name=live.agent_name or live.agent,
            client=live.client,
            state=live.state,
            started_at=dt.datetime.fromtimestamp(live.started_at, dt.UTC),
            duration_s=round(live.duration_s, 1),
            turns=live.turns,
            last_turn_ms=live.last_turn_ms,
            worker=live.worker,
        )


class AuditOut(BaseModel):
    """One audit event (``detail`` never holds secrets or content)."""

    id: str
    tenant_id: str | None
    user_id: str | None
    action: str
    outcome: str
    ip: str | None
    detail: dict[str, Any]
    created_at: dt.datetime

    @classmethod
    def of(cls, record: AuditRecord) -> AuditOut:
        """From the store's record."""
        return cls(
            id=record.id,
            tenant_id=record.tenant_id,
            user_id=record.user_id,
            action=record.action,
            outcome=record.outcome,
            ip=record.ip,
            detail=dict(record.detail),
            created_at=record.created_at,
        )


class _FromAttributes(BaseModel):
    """Built from the snapshot dataclasses of ``observability.snapshot``."""

    model_config = ConfigDict(from_attributes=True)


class StageLatencyOut(_FromAttributes):
    """Latency of one voice stage (percentiles estimated from histogram buckets)."""

    stage: str
    count: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None


class EventLoopLagOut(_FromAttributes):
    """How late the event loop wakes sleepers; ``samples`` is 0 when nothing samples it."""

    last_ms: float
    p95_ms: float | None
    samples: int


class AudioFramesOut(_FromAttributes):
    """Audio messages received from and sent to clients, and those dropped by reason."""

    received: int
    sent: int
    dropped: dict[str, int]


class MetricsOut(_FromAttributes):
    """``GET /api/admin/metrics``: the whole process, counted since it started."""

    stages: list[StageLatencyOut]
    turns: dict[str, int]
    barge_ins: int
    active_sessions: int
    event_loop: EventLoopLagOut
    audio_frames: AudioFramesOut


class ProviderStateOut(_FromAttributes):
    """One provider of a chain: breaker ``closed``, ``open`` or ``half_open``, and failures."""

    name: str
    breaker: str
    consecutive_failures: int
    errors: int
    last_error: str | None


class ChainStateOut(_FromAttributes):
    """A fallback chain and its members in the order they are tried."""

    name: str
    stage: str
    model: str
    available: bool
    failovers: int
    providers: list[ProviderStateOut]


class StageProviderOut(_FromAttributes):
    """The default agent's provider (or chain) for one stage; name None: not loaded."""

    stage: str
    name: str | None
    model: str | None


class ProvidersOut(_FromAttributes):
    """``GET /api/admin/providers``."""

    stages: list[StageProviderOut]
    chains: list[ChainStateOut]


class ErrorOut(BaseModel):
    """A recent problem: a WARNING+ log record (``source="log"``) or a refused/failed action
    from the audit log (``source="audit"``). Messages are static templates, never content.
    """

    source: Literal["log", "audit"]
    at: dt.datetime
    level: str
    name: str
    message: str
    tenant_id: str | None = None
    user_id: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
