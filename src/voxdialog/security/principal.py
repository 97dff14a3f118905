"""Who is calling: the tenant and user data is scoped to, and the identity acting for them.

A leaf module (it imports nothing from voxdialog), so every layer may use these types.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN = "admin"
MEMBER = "member"
ROLES = (ADMIN, MEMBER)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose data a turn may touch. Every store call is filtered by it."""

    tenant_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    Attributes:
        scope: The tenant and user every query is filtered by.
        role: ``"admin"`` or ``"member"`` inside the tenant.
        via: How the caller proved it: ``api_key``, ``access_token``, ``ws_ticket``,
            ``page_token`` or ``local`` (auth switched off).
        login_session_id: The sign-in (JWT ``sid``) an access token or ticket belongs to;
            revoking it ends the caller's tokens and sockets.
        agent: The agent a WebSocket ticket was issued for, if any.
        operator: An admin of the bootstrap tenant: may see every tenant in ``/api/admin``.
    """

    scope: Scope
    role: str
    via: str
    login_session_id: str | None = None
    agent: str | None = None
    operator: bool = False

    @property
    def is_admin(self) -> bool:
        """Whether the caller administers its tenant."""
        return self.role == ADMIN
