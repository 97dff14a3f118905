"""Who is calling: the authenticated identity every route and socket acts for."""

from __future__ import annotations

from dataclasses import dataclass

from voxdialog.brain.base import Scope

ADMIN = "admin"
MEMBER = "member"
ROLES = (ADMIN, MEMBER)


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
