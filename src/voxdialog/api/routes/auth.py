"""``/api/auth``: register, login, refresh (rotation), logout, WebSocket tickets."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request, Response

from voxdialog.accounts.service import AuthError, AuthService, SignedIn
from voxdialog.api.deps import (
    PrincipalDep,
    RuntimeDep,
    bearer,
    client_ip,
    enforce,
    is_loopback,
)
from voxdialog.api.errors import ApiError
from voxdialog.api.schemas import (
    LoginIn,
    RefreshIn,
    RegisterIn,
    SignedInOut,
    TicketIn,
    TicketOut,
    TokensOut,
    UserOut,
)
from voxdialog.db.repos import audit
from voxdialog.runtime import Runtime
from voxdialog.security.principal import Principal
from voxdialog.security.ratelimit import RateLimiterUnavailable

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request"},
    401: {"description": "Not signed in"},
    429: {"description": "Too many requests"},
}
router = APIRouter(prefix="/api", tags=["auth"], responses=ERRORS)
#: Host names that can only mean this machine (a page served under any other name is not local).
LOOPBACK_HOST_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
#: The audit action of a local sign-in (password sign-ins are ``auth.login``).
LOCAL_LOGIN = "auth.local_login"
#: Headers a reverse proxy adds, besides any ``X-Forwarded-*``: a request that carries one came
#: through a proxy, whatever address it arrives from, and is no page on this machine.
FORWARDING_HEADERS = frozenset(
    {
        "forwarded",
        "via",
        "x-real-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "x-original-forwarded-for",
        "true-client-ip",
        "client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
    }
)


def _api_error(exc: AuthError) -> ApiError:
    headers = None
    if exc.retry_after_s is not None:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return ApiError(exc.status, exc.message, code=exc.code, headers=headers)


def _auth(runtime: Runtime) -> AuthService:
    if runtime.auth is None:
        raise ApiError(503, "The server is starting.", code="unavailable")
    return runtime.auth


def _signed_in(result: SignedIn) -> SignedInOut:
    tokens = result.tokens
    return SignedInOut(
        user=UserOut.of(result.user),
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )


@router.post(
    "/auth/register",
    status_code=201,
    responses={403: {"description": "Registration closed"}, 409: {"description": "Email taken"}},
)
async def register(body: RegisterIn, request: Request, runtime: RuntimeDep) -> SignedInOut:
    """Create an account in a new tenant (as its admin) and sign it in."""
    ip = client_ip(request)
    await enforce(runtime, f"register:ip:{ip}", runtime.settings.rate_limits.register_per_ip)
    try:
        result = await _auth(runtime).register(
            email=str(body.email),
            password=body.password,
            display_name=body.display_name,
            tenant_name=body.tenant_name,
            ip=ip,
        )
    except AuthError as exc:
        raise _api_error(exc) from exc
    return _signed_in(result)


@router.post("/auth/login")
async def login(body: LoginIn, request: Request, runtime: RuntimeDep) -> SignedInOut:
    """Sign in with email and password."""
    try:
        result = await _auth(runtime).login(
            email=body.email, password=body.password, ip=client_ip(request)
        )
    except RateLimiterUnavailable as exc:
        raise ApiError(503, "Sign-in is unavailable; try again.", code="unavailable") from exc
    except AuthError as exc:
        raise _api_error(exc) from exc
    return _signed_in(result)


@router.post("/auth/refresh")
async def refresh(body: RefreshIn, request: Request, runtime: RuntimeDep) -> TokensOut:
    """Trade a refresh token for new tokens; the old one is spent (reuse ends the sign-in)."""
    try:
        tokens = await _auth(runtime).refresh(body.refresh_token, ip=client_ip(request))
    except AuthError as exc:
        raise _api_error(exc) from exc
    return TokensOut(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )


@router.post("/auth/logout", status_code=204)
async def logout(principal: PrincipalDep, request: Request, runtime: RuntimeDep) -> Response:
    """End this sign-in: its tokens stop working and its live sockets close."""
    await _auth(runtime).logout(principal, ip=client_ip(request))
    return Response(status_code=204)


@router.post("/auth/ws-ticket")
async def ws_ticket(
    principal: PrincipalDep, runtime: RuntimeDep, body: TicketIn | None = None
) -> TicketOut:
    """A single-use ticket for ``/v1/realtime`` (browsers cannot send an Authorization header)."""
    agent = body.agent if body else None
    ticket = await _auth(runtime).issue_ticket(principal, agent=agent)
    return TicketOut(ticket=ticket, expires_in=runtime.settings.auth.ticket_ttl_s)


@router.post("/auth/local", responses={401: {"description": "Not the page on this machine"}})
async def local_sign_in(request: Request, runtime: RuntimeDep) -> SignedInOut:
    """Sign in as the local administrator: only for the talk page opened on this machine.

    Offline use on localhost needs no sign-up. The request must come from loopback, carry no
    credential, be same-origin, and name a loopback host (another site's page cannot ask, and
    a DNS-rebinding name that resolves to 127.0.0.1 is not a loopback host name). It must not
    have come through a reverse proxy (which connects from loopback and may pass on a loopback
    Host): refused when it carries forwarding headers, arrives over HTTP/1.0 (nginx's default
    to its upstream), or the server is configured behind a proxy (``trusted_proxies``), and
    always when ``auth.local_sign_in`` is off.
    """
    ip = client_ip(request)
    refusal = _local_sign_in_refusal(request, runtime)
    if refusal is None and request.headers.get("authorization") is not None:
        refusal = "credential_given"
    scope = runtime.local_scope
    if refusal is None and scope is None:
        refusal = "no_local_admin"
    if refusal is not None or scope is None:
        await audit.record_audit(
            runtime.db, LOCAL_LOGIN, audit.DENIED, ip=ip, detail={"reason": refusal}
        )
        raise ApiError(
            401,
            "Local sign-in only works for the page opened on this machine; sign in instead.",
            code="local_sign_in_refused",
        )
    try:
        result = await _auth(runtime).local_sign_in(scope, ip=ip)
    except AuthError as exc:
        raise _api_error(exc) from exc
    return _signed_in(result)


@router.post("/realtime-token", responses={401: {"description": "Not allowed"}})
async def realtime_token(request: Request, runtime: RuntimeDep) -> dict[str, object]:
    """A ticket for the talk page: with a bearer credential, or as the local admin on localhost.

    Without a credential only a same-origin page opened on this machine under a loopback host
    name gets one: offline use on localhost needs no sign-up, another site cannot mint
    tickets through the browser, and neither can a DNS-rebinding name. The same rules as
    ``/api/auth/local`` apply (off behind a proxy or when ``auth.local_sign_in`` is off).
    """
    principal: Principal | None = await runtime.authenticate(bearer(request))
    if (
        principal is None
        and bearer(request) is None
        and _local_sign_in_refusal(request, runtime) is None
    ):
        principal = runtime.local_principal
    if principal is None:
        raise ApiError(401, "Sign in or use an API key.", code="invalid_api_key")
    ticket = await _auth(runtime).issue_ticket(principal)
    ttl = runtime.settings.auth.ticket_ttl_s
    return {"token": ticket, "ticket": ticket, "expires_in": ttl}


def _hostname(host: str) -> str:
    """The name part of a Host header, lower case: ``[::1]:8000`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.partition(":")[0]


def _local_sign_in_refusal(request: Request, runtime: Runtime) -> str | None:
    """Why a request may not sign in as the local admin, or None when it may."""
    settings = runtime.settings
    if not settings.auth.local_sign_in:
        return "disabled"
    if settings.trusted_proxies:
        return "behind_proxy"
    if any(_is_forwarding(name) for name in request.headers):
        return "forwarded"
    if request.scope.get("http_version") == "1.0":
        return "http_1_0"  # no browser sends it; nginx does, unless told otherwise
    return _local_page_refusal(request)


def _is_forwarding(name: str) -> bool:
    name = name.lower()
    return name in FORWARDING_HEADERS or name.startswith("x-forwarded-")


def _local_page_refusal(request: Request) -> str | None:
    """Why a request is not a same-origin page on this machine, or None when it is."""
    if not is_loopback(request):
        return "not_loopback"
    host = request.headers.get("host", "")
    # DNS rebinding: attacker.example may resolve to 127.0.0.1, but it stays its Host.
    if _hostname(host) not in LOOPBACK_HOST_NAMES:
        return "host_not_loopback"
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1].rstrip("/") != host:
        return "foreign_origin"
    return None
