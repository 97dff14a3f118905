"""``/api/admin``: tenants, users, live sessions, metrics, providers, errors and the audit log.

Admins only (others get 403). A tenant admin sees its own tenant; a user of another tenant is
answered 404, never 403, so ids cannot be probed. An operator (admin of the bootstrap tenant)
sees every tenant and may narrow lists with ``?tenant_id=``.

Metrics count every tenant's turns and sessions, so their process-wide figures are for
operators (as ``/metrics``); a tenant admin sees its own tenant's open sessions. Provider
health is process-wide and holds no tenant data (as ``/readyz``), so every admin sees it.
Warnings from the process log name no tenant, so ``/errors`` shows them to operators only;
tenant admins get the failed and refused actions of their own tenant from the audit log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from voxdialog.accounts.service import AuthService
from voxdialog.api.admin_schemas import (
    AdminUserIn,
    AdminUserPatch,
    AudioFramesOut,
    AuditOut,
    ErrorOut,
    EventLoopLagOut,
    LiveSessionOut,
    MetricsOut,
    ProvidersOut,
    TenantOut,
)
from voxdialog.api.deps import AdminDep, RuntimeDep, client_ip
from voxdialog.api.errors import ApiError
from voxdialog.api.schemas import Page, UserOut, page_of
from voxdialog.db.repos import audit
from voxdialog.db.repos.users import (
    EmailTakenError,
    UserRecord,
    count_admins,
    create_account,
    delete_user,
    end_user_access,
    get_tenant_user,
    list_tenants,
    list_users,
    set_user_state,
)
from voxdialog.observability.snapshot import (
    RECENT_LOG_ERRORS,
    LogEntry,
    metrics_snapshot,
    providers_snapshot,
)
from voxdialog.runtime import Runtime
from voxdialog.security.passwords import PasswordPolicyError, check_password_policy
from voxdialog.security.principal import ADMIN, MEMBER, Principal

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request"},
    401: {"description": "Not signed in"},
    403: {"description": "Not an admin"},
    429: {"description": "Too many requests"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not found"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Email taken, the tenant's last admin, or the caller itself"}
}
router = APIRouter(prefix="/api/admin", tags=["admin"], responses=ERRORS)

Limit = Annotated[int, Query(ge=1, le=200, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=100_000, description="Items to skip.")]
TenantFilter = Annotated[
    str | None, Query(max_length=64, description="Only this tenant (operators; others: own).")
]
UserId = Annotated[str, Path(max_length=64)]

#: How many of the newest audit events ``/errors`` looks through for failures and refusals.
AUDIT_ERROR_WINDOW = 500
MAX_ERRORS = 100
LAST_ADMIN = "This is the tenant's last admin; make another admin first."


# --- helpers --------------------------------------------------------------------------------


def _tenant_view(principal: Principal, requested: str | None = None) -> str | None:
    """The tenant whose data the caller sees; None (every tenant) only for an operator."""
    if principal.operator:
        return requested
    own = principal.scope.tenant_id
    if requested not in (None, own):
        raise ApiError(404, "Tenant not found.", code="not_found")
    return own


async def _visible_user(runtime: Runtime, principal: Principal, user_id: str) -> UserRecord:
    user = await get_tenant_user(runtime.db, _tenant_view(principal), user_id)
    if user is None:
        raise ApiError(404, "User not found.", code="not_found")
    return user


def _auth(runtime: Runtime) -> AuthService:
    if runtime.auth is None:
        raise ApiError(503, "The server is starting.", code="unavailable")
    return runtime.auth


def _is_enabled_admin(user: UserRecord) -> bool:
    return user.role == ADMIN and not user.disabled


@dataclass(frozen=True, slots=True)
class _UserAction:
    """One admin action on users, audited in the tenant it touches with the admin as its user.

    Attributes:
        name: The audit action, e.g. ``admin.user_update``.
    """

    name: str
    runtime: Runtime
    request: Request
    principal: Principal

    async def succeeded(self, target: UserRecord, **detail: Any) -> None:
        """Audit the action as done to ``target``."""
        await self._record(audit.SUCCESS, target, detail)

    async def refuse(self, target: UserRecord, reason: str, message: str) -> ApiError:
        """Audit the action as refused and return its 409 answer."""
        await self._record(audit.DENIED, target, {"reason": reason})
        return ApiError(409, message, code=reason)

    async def keep_an_admin(self, target: UserRecord) -> None:
        """Refuse (409) if ``target`` is its tenant's last enabled admin."""
        if _is_enabled_admin(target) and await count_admins(self.runtime.db, target.tenant_id) <= 1:
            raise await self.refuse(target, "last_admin", LAST_ADMIN)

    async def _record(self, outcome: str, target: UserRecord, detail: Mapping[str, Any]) -> None:
        await audit.record_audit(
            self.runtime.db,
            self.name,
            outcome,
            tenant_id=target.tenant_id,
            user_id=self.principal.scope.user_id,
            ip=client_ip(self.request),
            detail={
                "target_user_id": target.id,
                **detail,
                "actor_tenant_id": self.principal.scope.tenant_id,
            },
        )


# --- tenants and users ----------------------------------------------------------------------


@router.get("/tenants")
async def tenants(
    principal: AdminDep, runtime: RuntimeDep, limit: Limit = 50, offset: Offset = 0
) -> Page[TenantOut]:
    """Tenants the caller may see, oldest first, with user and session counts."""
    view = _tenant_view(principal)
    records = await list_tenants(runtime.db, view, limit=limit + 1, offset=offset)
    live = Counter(s.tenant_id for s in await runtime.sessions.listing(view))
    return page_of(records, limit, lambda tenant: TenantOut.of(tenant, live[tenant.id]))


@router.get("/users", responses=NOT_FOUND)
async def users(
    principal: AdminDep,
    runtime: RuntimeDep,
    limit: Limit = 50,
    offset: Offset = 0,
    tenant_id: TenantFilter = None,
) -> Page[UserOut]:
    """Users the caller may see, oldest first."""
    view = _tenant_view(principal, tenant_id)
    records = await list_users(runtime.db, view, limit=limit + 1, offset=offset)
    return page_of(records, limit, UserOut.of)


@router.post("/users", status_code=201, responses=CONFLICT)
async def create_user(
    body: AdminUserIn, request: Request, principal: AdminDep, runtime: RuntimeDep
) -> UserOut:
    """Add a member or admin to the caller's tenant, with a password that meets the policy."""
    hasher = _auth(runtime).hasher
    email = str(body.email)
    try:
        check_password_policy(body.password, email=email)
    except PasswordPolicyError as exc:
        raise ApiError(400, str(exc), code="weak_password", param="password") from exc
    display_name = body.display_name or email.split("@", 1)[0].strip() or "user"
    try:
        user = await create_account(
            runtime.db,
            email=email,
            password_hash=await hasher.hash(body.password),
            display_name=display_name,
            tenant_name=None,
            tenant_id=principal.scope.tenant_id,
            role=body.role,
        )
    except EmailTakenError as exc:
        raise ApiError(409, "This email address is already registered.", code="email_taken") from (
            exc
        )
    action = _UserAction("admin.user_create", runtime, request, principal)
    await action.succeeded(user, role=user.role)
    return UserOut.of(user)


@router.get("/users/{user_id}", responses=NOT_FOUND)
async def read_user(user_id: UserId, principal: AdminDep, runtime: RuntimeDep) -> UserOut:
    """One user of the caller's tenant (any tenant for an operator)."""
    return UserOut.of(await _visible_user(runtime, principal, user_id))


@router.patch("/users/{user_id}", responses={**NOT_FOUND, **CONFLICT})
async def update_user(
    user_id: UserId,
    body: AdminUserPatch,
    request: Request,
    principal: AdminDep,
    runtime: RuntimeDep,
) -> UserOut:
    """Change a user's role, enabled state or display name.

    Disabling ends the user's sign-ins at once (their live sockets close at the next check).
    The tenant's last enabled admin cannot be demoted or disabled, and nobody can disable
    themselves (409).
    """
    action = _UserAction("admin.user_update", runtime, request, principal)
    target = await _visible_user(runtime, principal, user_id)
    changes = body.model_dump(exclude_none=True)
    if not changes:
        return UserOut.of(target)
    if body.disabled and target.id == principal.scope.user_id:
        raise await action.refuse(target, "self_action", "You cannot disable yourself.")
    if body.role == MEMBER or body.disabled:
        await action.keep_an_admin(target)
    updated = await set_user_state(runtime.db, target.tenant_id, target.id, **changes)
    if updated is None:
        raise ApiError(404, "User not found.", code="not_found")
    if body.disabled:
        await end_user_access(runtime.db, target.id, "disabled")
    await action.succeeded(
        target, fields=sorted(changes), role=updated.role, disabled=updated.disabled
    )
    return UserOut.of(updated)


@router.delete("/users/{user_id}", status_code=204, responses={**NOT_FOUND, **CONFLICT})
async def remove_user(
    user_id: UserId, request: Request, principal: AdminDep, runtime: RuntimeDep
) -> Response:
    """Delete a user and everything they own; their sign-ins end at once.

    Nobody can delete themselves, nor the tenant's last enabled admin (409).
    """
    action = _UserAction("admin.user_delete", runtime, request, principal)
    target = await _visible_user(runtime, principal, user_id)
    if target.id == principal.scope.user_id:
        raise await action.refuse(target, "self_action", "You cannot delete yourself.")
    await action.keep_an_admin(target)
    await end_user_access(runtime.db, target.id, "deleted")
    if not await delete_user(runtime.db, target.tenant_id, target.id):
        raise ApiError(404, "User not found.", code="not_found")
    await action.succeeded(target, role=target.role)
    return Response(status_code=204)


# --- live state -----------------------------------------------------------------------------


@router.get("/sessions/live", responses=NOT_FOUND)
async def live_sessions(
    principal: AdminDep, runtime: RuntimeDep, tenant_id: TenantFilter = None
) -> list[LiveSessionOut]:
    """Realtime sessions open now, oldest first (who, agent, state, timing; no content)."""
    view = _tenant_view(principal, tenant_id)
    return [LiveSessionOut.of(s) for s in await runtime.sessions.listing(view)]


@router.get("/metrics")
async def metrics(principal: AdminDep, runtime: RuntimeDep) -> MetricsOut:
    """Per-stage latency p50/p95, turns, barge-ins, sessions, loop lag and audio frames.

    The counters are process-wide (every tenant's turns and sessions), so only an operator
    sees them; a tenant admin gets its own tenant's open sessions and empty process figures.
    """
    snapshot = MetricsOut.model_validate(metrics_snapshot())
    if principal.operator:
        return snapshot
    own = len(await runtime.sessions.listing(principal.scope.tenant_id))
    return MetricsOut(
        stages=[],
        turns={},
        barge_ins=0,
        active_sessions=own,
        event_loop=EventLoopLagOut(last_ms=0.0, p95_ms=None, samples=0),
        audio_frames=AudioFramesOut(received=0, sent=0, dropped={}),
    )


@router.get("/providers")
async def providers(principal: AdminDep, runtime: RuntimeDep) -> ProvidersOut:
    """The default agent's providers and every fallback chain's circuit breakers."""
    stages = {"vad": runtime.vad, "stt": runtime.stt, "tts": runtime.tts, "llm": runtime.llm}
    return ProvidersOut.model_validate(providers_snapshot(runtime.assembly.chains, stages))


def _log_error(entry: LogEntry) -> ErrorOut:
    return ErrorOut(
        source="log",
        at=entry.at,
        level=entry.level,
        name=entry.logger,
        message=entry.message,
        fields=entry.fields,
    )


def _audit_error(record: audit.AuditRecord) -> ErrorOut:
    fields = {key: str(value) for key, value in record.detail.items()}
    if record.ip:
        fields["ip"] = record.ip
    return ErrorOut(
        source="audit",
        at=record.created_at,
        level="ERROR" if record.outcome == audit.FAILURE else "WARNING",
        name=record.action,
        message=f"{record.action}: {record.outcome}",
        tenant_id=record.tenant_id,
        user_id=record.user_id,
        fields=fields,
    )


@router.get("/errors")
async def errors(
    principal: AdminDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_ERRORS)] = MAX_ERRORS,
) -> list[ErrorOut]:
    """Recent problems, newest first: failed or refused actions of the caller's tenant (from
    the newest audit events) and, for operators, the process's latest warnings and errors."""
    view = _tenant_view(principal)
    recent = await audit.list_audit(runtime.db, view, limit=AUDIT_ERROR_WINDOW)
    found = [_audit_error(r) for r in recent if r.outcome != audit.SUCCESS]
    if principal.operator:
        found += [_log_error(entry) for entry in RECENT_LOG_ERRORS.entries()]
    found.sort(key=lambda error: error.at, reverse=True)
    return found[:limit]


@router.get("/audit", responses=NOT_FOUND)
async def audit_log(
    principal: AdminDep,
    runtime: RuntimeDep,
    limit: Limit = 50,
    offset: Offset = 0,
    tenant_id: TenantFilter = None,
) -> Page[AuditOut]:
    """Audit events the caller may see, newest first."""
    view = _tenant_view(principal, tenant_id)
    records = await audit.list_audit(runtime.db, view, limit=limit + 1, offset=offset)
    return page_of(records, limit, AuditOut.of)
