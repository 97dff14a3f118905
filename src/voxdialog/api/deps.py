"""Typed dependencies for routes: the runtime, the caller, and per-caller rate limits."""

from __future__ import annotations

import ipaddress
import math
from typing import Annotated

from fastapi import Depends, Request

from voxdialog.api.errors import ApiError
from voxdialog.runtime import Runtime
from voxdialog.security.principal import Principal, Scope
from voxdialog.security.ratelimit import Decision, Limit, RateLimiterUnavailable


def get_runtime(request: Request) -> Runtime:
    """The process runtime (set by the app's lifespan)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer(request: Request) -> str | None:
    """The bearer credential of a request, if any."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def client_ip(request: Request) -> str:
    """The peer address (a proxy in front must be trusted explicitly; none is by default)."""
    return request.client.host if request.client else "unknown"


def too_many(decision: Decision) -> ApiError:
    """The 429 answer for a refused request."""
    return ApiError(
        429,
        "Rate limit reached; slow down.",
        code="rate_limit_exceeded",
        type="rate_limit_error",
        headers={"Retry-After": str(max(1, math.ceil(decision.retry_after_s)))},
    )


async def enforce(runtime: Runtime, key: str, count: int) -> None:
    """Count one request against ``key``; raise 429 when over ``count`` per window."""
    limits = runtime.settings.rate_limits
    if not limits.enabled:
        return
    try:
        decision = await runtime.limiter.hit(key, Limit(count, limits.window_s))
    except RateLimiterUnavailable as exc:
        # Fail closed: a shared limiter that is down must not turn into no limit at all.
        raise ApiError(503, "Rate limiter unavailable; try again.", code="unavailable") from exc
    if not decision.allowed:
        raise too_many(decision)


async def get_principal(request: Request, runtime: RuntimeDep) -> Principal:
    """The caller from an API key or access token; 401 otherwise. Rate-limited per user/tenant."""
    credential = bearer(request)
    principal = await runtime.authenticate(credential)
    if principal is None:
        raise ApiError(
            401,
            "Incorrect API key provided." if credential else "You didn't provide an API key.",
            code="invalid_api_key",
        )
    limits = runtime.settings.rate_limits
    scope = principal.scope
    await enforce(runtime, f"tenant:{scope.tenant_id}:user:{scope.user_id}", limits.per_user)
    await enforce(runtime, f"tenant:{scope.tenant_id}", limits.per_tenant)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_scope(principal: PrincipalDep) -> Scope:
    """The caller's data scope."""
    return principal.scope


ScopeDep = Annotated[Scope, Depends(get_scope)]


async def get_admin(principal: PrincipalDep) -> Principal:
    """The caller, who must administer its tenant (others get 403)."""
    if not principal.is_admin:
        raise ApiError(403, "This action needs the admin role.", code="forbidden")
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]


def is_loopback(request: Request) -> bool:
    """Whether the request comes from this machine."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")
