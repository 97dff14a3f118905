"""Admission: who may open a Realtime session, as which agent, continuing what.

Everything here happens before the session loop starts: the Origin check (before the
upgrade), the credential (header, subprotocol, ``?ticket=`` or ``?token=``) within the auth
deadline, the API shape, the agent, the conversation to resume (taking it over from a socket
still open) and the session caps. A refusal is typed; the endpoint turns it into the hosted
service's failure style (upgrade, one ``error`` event, close).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import WebSocket

from voxdialog.agents.stages import AgentStages, UnknownAgentError
from voxdialog.brain.base import HistoryMessage
from voxdialog.db.repos.sessions import get_session
from voxdialog.live import LiveSession, SessionBusy, TooManySessions
from voxdialog.pipeline.ids import new_id
from voxdialog.runtime import Runtime
from voxdialog.security.principal import Principal
from voxdialog.settings import accepts_model

# A client that cannot finish the handshake's auth in time is dropped (R12: <= 5 s).
AUTH_DEADLINE_S = 5.0
# How long a reconnect waits for the old connection of its conversation to wind down.
_TAKEOVER_S = 5.0
_INSECURE_KEY = "openai-insecure-api-key."


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a connection is refused, in the wire's terms."""

    code: str
    message: str
    close_code: int
    error_type: str = "invalid_request_error"


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted connection: registered as live until the endpoint removes it."""

    principal: Principal
    agent: AgentStages
    live: LiveSession
    session_id: str
    kind: str  # "realtime" | "transcription"
    model: str
    prior: tuple[HistoryMessage, ...]
    resumed: bool


def credential(ws: WebSocket) -> tuple[str | None, str | None]:
    """The bearer credential and the subprotocol to select.

    Browsers cannot set headers: they pass a ticket (or key) as the subprotocol
    ``openai-insecure-api-key.<credential>`` or as ``?ticket=`` / ``?token=``.
    """
    header = ws.headers.get("authorization", "")
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
    chosen = "realtime" if "realtime" in offered else None
    if header.lower().startswith("bearer "):
        return header[7:].strip(), chosen
    key = next(
        (p.removeprefix(_INSECURE_KEY) for p in offered if p.startswith(_INSECURE_KEY)), None
    )
    return key or ws.query_params.get("ticket") or ws.query_params.get("token"), chosen


def origin_allowed(ws: WebSocket, allowed: list[str]) -> bool:
    """Non-browser clients send no Origin; a browser's must be this server or allowlisted.

    "This server" is the page's scheme and host: a ``ws://`` socket belongs to ``http://`` pages
    and a ``wss://`` one to ``https://`` pages, so a page on another scheme with the same host
    (a sandboxed ``null`` origin, ``ftp://``, plain HTTP against a TLS server) is foreign.
    """
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    if origin.rstrip("/") in (a.rstrip("/") for a in allowed):
        return True
    page_scheme = "https" if ws.url.scheme == "wss" else "http"
    return origin.rstrip("/") == f"{page_scheme}://{ws.headers.get('host', '')}"


async def admit(ws: WebSocket, runtime: Runtime, key: str | None) -> Admission | Refusal:
    """Admit the connection or say why not (the origin is checked before, by the endpoint)."""
    async with asyncio.timeout(AUTH_DEADLINE_S):
        principal = await _principal(runtime, key)
    if principal is None:
        message = "Incorrect API key provided." if key else "Missing bearer credential."
        return Refusal("invalid_api_key", message, 3000)
    if (
        refused := _shape_refusal(ws, runtime.settings.model_name) or _capacity_refusal(runtime)
    ) is not None:
        return refused
    try:
        agent = await runtime.agent_for(
            principal.scope, ws.query_params.get("agent") or principal.agent
        )
    except UnknownAgentError:
        return Refusal("agent_not_found", "No such agent.", 4004)
    resumed = ws.query_params.get("conversation")
    prior: list[HistoryMessage] = []
    if resumed:
        refused = await _take_over(runtime, principal, resumed)
        if refused is not None:
            return refused
        prior = await runtime.resume_context(principal.scope, resumed)
    session_id = resumed or new_id("sess")
    live = LiveSession(
        session_id,
        principal.scope.tenant_id,
        principal.scope.user_id,
        agent.agent_id,
        "realtime",
        agent_name=agent.name,
        worker=runtime.worker_index,
    )
    if (refused := await _register(runtime, live)) is not None:
        return refused
    return Admission(
        principal=principal,
        agent=agent,
        live=live,
        session_id=session_id,
        kind="transcription" if ws.query_params.get("intent") == "transcription" else "realtime",
        model=ws.query_params.get("model") or runtime.settings.model_name,
        prior=tuple(prior),
        resumed=bool(resumed),
    )


async def _principal(runtime: Runtime, key: str | None) -> Principal | None:
    # A JWT here is usually a single-use ticket; an access token or API key also works.
    auth = runtime.auth if runtime.settings.auth_required else None
    if key and auth is not None and key.count(".") == 2:
        principal = await auth.redeem_ticket(key)
        if principal is not None:
            return principal
    return await runtime.authenticate(key)


def _shape_refusal(ws: WebSocket, served: str) -> Refusal | None:
    protocols = (p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(","))
    if ws.headers.get("openai-beta", "").startswith("realtime=") or any(
        p == "openai-beta.realtime-v1" for p in protocols
    ):
        return Refusal(
            "beta_api_shape_disabled",
            "The beta Realtime API shape is not supported; use the GA interface.",
            4000,
        )
    if ws.query_params.get("call_id"):
        return Refusal("invalid_value", "call_id is not supported here.", 4000)
    model = ws.query_params.get("model")
    # A transcription session needs no model; a realtime one may name only the served model
    # (the same rule as session.update's ``model``).
    realtime = ws.query_params.get("intent") != "transcription"
    if model and realtime and not accepts_model(model, served):
        return Refusal("invalid_model", f"The model '{model[:128]}' is not supported.", 4000)
    return None


async def _take_over(runtime: Runtime, principal: Principal, session_id: str) -> Refusal | None:
    # A reconnect continues its conversation: same id, context from the cache or store.
    if await get_session(runtime.db, principal.scope, session_id) is None:
        return Refusal("conversation_not_found", "No such conversation to resume.", 4004)
    if not await runtime.sessions.take_over(
        session_id, principal.scope.user_id, timeout_s=_TAKEOVER_S
    ):
        return Refusal("conversation_busy", "This conversation is open elsewhere.", 4009)
    return None


def _capacity_refusal(runtime: Runtime) -> Refusal | None:
    """Refuse while the loop already runs late: one more session would delay every other."""
    limit_ms = runtime.settings.limits.admission_max_loop_lag_ms
    if limit_ms and runtime.loop_load.lag_ms > limit_ms:
        return Refusal(
            "server_busy", "The server is at capacity; try again shortly.", 1013, "server_error"
        )
    return None


async def _register(runtime: Runtime, live: LiveSession) -> Refusal | None:
    try:
        await runtime.sessions.add(live)
    except SessionBusy:
        return Refusal("conversation_busy", "This conversation is open elsewhere.", 4009)
    except TooManySessions as exc:
        message = (
            "You have too many open sessions."
            if exc.per_user
            else "Too many concurrent sessions; try again later."
        )
        return Refusal("session_limit_reached", message, 1013, "server_error")
    return None
