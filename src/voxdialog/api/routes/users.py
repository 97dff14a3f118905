"""``/api/users/me`` (profile, settings, password) and ``/api/api-keys``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from voxdialog.accounts.service import AuthError
from voxdialog.api.deps import PrincipalDep, RuntimeDep, client_ip
from voxdialog.api.errors import ApiError
from voxdialog.api.schemas import (
    ApiKeyIn,
    ApiKeyOut,
    NewApiKeyOut,
    PasswordChangeIn,
    ProfilePatch,
    UserOut,
    UserSettings,
)
from voxdialog.db.repos import audit
from voxdialog.db.repos.api_keys import create_api_key, list_api_keys, revoke_api_key
from voxdialog.db.repos.users import (
    EmailTakenError,
    UserRecord,
    get_user,
    put_settings,
    update_profile,
)
from voxdialog.runtime import Runtime
from voxdialog.security.principal import Principal

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request"},
    401: {"description": "Not signed in"},
    404: {"description": "Not found"},
    429: {"description": "Too many requests"},
}
router = APIRouter(prefix="/api", tags=["users"], responses=ERRORS)


async def _me(runtime: Runtime, principal: Principal) -> UserRecord:
    user = await get_user(runtime.db, principal.scope)
    if user is None:
        raise ApiError(404, "User not found.", code="not_found")
    return user


async def _audit_key(
    runtime: Runtime, request: Request, principal: Principal, action: str, key_id: str
) -> None:
    """Record that the caller did ``action`` to one of its own API keys."""
    await audit.record_audit(
        runtime.db,
        action,
        audit.SUCCESS,
        tenant_id=principal.scope.tenant_id,
        user_id=principal.scope.user_id,
        ip=client_ip(request),
        detail={"key_id": key_id},
    )


@router.get("/users/me")
async def read_me(principal: PrincipalDep, runtime: RuntimeDep) -> UserOut:
    """The caller's profile."""
    return UserOut.of(await _me(runtime, principal))


@router.patch("/users/me", responses={409: {"description": "Email taken"}})
async def patch_me(body: ProfilePatch, principal: PrincipalDep, runtime: RuntimeDep) -> UserOut:
    """Change the display name or email."""
    try:
        user = await update_profile(
            runtime.db,
            principal.scope,
            display_name=body.display_name,
            email=str(body.email) if body.email is not None else None,
        )
    except EmailTakenError as exc:
        raise ApiError(
            409, "This email address is already registered.", code="email_taken"
        ) from exc
    if user is None:
        raise ApiError(404, "User not found.", code="not_found")
    return UserOut.of(user)


@router.get("/users/me/settings")
async def read_settings(principal: PrincipalDep, runtime: RuntimeDep) -> UserSettings:
    """The caller's personal settings."""
    user = await _me(runtime, principal)
    return UserSettings.model_validate(user.settings)


@router.put("/users/me/settings")
async def write_settings(
    body: UserSettings, principal: PrincipalDep, runtime: RuntimeDep
) -> UserSettings:
    """Replace the caller's personal settings."""
    user = await put_settings(runtime.db, principal.scope, body.model_dump(exclude_none=True))
    if user is None:
        raise ApiError(404, "User not found.", code="not_found")
    return UserSettings.model_validate(user.settings)


@router.post("/users/me/password", status_code=204)
async def change_password(
    body: PasswordChangeIn, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> Response:
    """Change the caller's password (the current one is required)."""
    if runtime.auth is None:
        raise ApiError(503, "The server is starting.", code="unavailable")
    try:
        await runtime.auth.change_password(
            principal, current=body.current_password, new=body.new_password, ip=client_ip(request)
        )
    except AuthError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code) from exc
    return Response(status_code=204)


@router.post("/api-keys", status_code=201)
async def new_api_key(
    body: ApiKeyIn, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> NewApiKeyOut:
    """Issue an API key for the caller; the key is in this answer only."""
    key, info = await create_api_key(runtime.db, principal.scope, body.name)
    await _audit_key(runtime, request, principal, "api_key.create", info.id)
    return NewApiKeyOut(key=key, **ApiKeyOut.of(info).model_dump())


@router.get("/api-keys")
async def api_keys(principal: PrincipalDep, runtime: RuntimeDep) -> list[ApiKeyOut]:
    """The caller's active keys (prefixes only)."""
    return [ApiKeyOut.of(info) for info in await list_api_keys(runtime.db, principal.scope)]


@router.delete("/api-keys/{key_id}", status_code=204)
async def delete_api_key(
    key_id: str, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> Response:
    """Revoke one of the caller's keys (404 for anyone else's)."""
    if not await revoke_api_key(runtime.db, principal.scope, key_id):
        raise ApiError(404, "API key not found.", code="not_found")
    await _audit_key(runtime, request, principal, "api_key.revoke", key_id)
    return Response(status_code=204)
