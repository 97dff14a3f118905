"""``POST /v1/realtime/client_secrets``: ephemeral keys for browser apps, as OpenAI mints them.

A server holding a real key mints a short-lived one for its page; the page connects to
``/v1/realtime`` with it (``Authorization: Bearer`` or the ``openai-insecure-api-key.<key>``
subprotocol, which browsers can set). Here the ephemeral key is our single-use WebSocket
ticket: it expires after ``auth.ticket_ttl_s`` and opens one socket, as the caller.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from voxdialog.api.deps import PrincipalDep, RuntimeDep
from voxdialog.api.errors import ApiError

router = APIRouter(prefix="/v1/realtime", tags=["realtime"])


class ExpiresAfter(BaseModel):
    """OpenAI's expiry wish; the key lives for the server's ``auth.ticket_ttl_s`` regardless."""

    anchor: str = Field("created_at", pattern="^created_at$")
    seconds: int = Field(600, ge=10, le=7200)


class ClientSecretIn(BaseModel):
    """OpenAI's request body; ``session`` is echoed back (the client sends its
    ``session.update`` once connected, as OpenAI's browser examples do)."""

    model_config = ConfigDict(extra="ignore")

    expires_after: ExpiresAfter | None = None
    session: dict[str, Any] | None = None


class ClientSecretOut(BaseModel):
    """OpenAI's response: the key, when it expires (Unix seconds) and the session."""

    value: str
    expires_at: int
    session: dict[str, Any]


@router.post("/client_secrets", responses={401: {"description": "No credential"}})
async def client_secrets(
    principal: PrincipalDep, runtime: RuntimeDep, body: ClientSecretIn | None = None
) -> ClientSecretOut:
    """Mint a single-use, short-lived key for one Realtime socket as the caller."""
    if runtime.auth is None:
        raise ApiError(503, "The server is starting.", code="unavailable")
    request = body or ClientSecretIn()
    # The ticket lives for the server's ticket TTL; a longer wish is not granted, a shorter
    # one does not shorten it (the key opens one socket either way).
    ttl = runtime.settings.auth.ticket_ttl_s
    ticket = await runtime.auth.issue_ticket(principal)
    session = {"type": "realtime", "model": runtime.settings.model_name, **(request.session or {})}
    session["object"] = "realtime.session"
    return ClientSecretOut(value=ticket, expires_at=int(time.time() + ttl), session=session)
