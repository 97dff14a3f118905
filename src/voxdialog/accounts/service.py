"""Sign-up, sign-in, token rotation, sign-out and credential checks (no web framework here)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from voxdialog.db.engine import Database
from voxdialog.db.models import new_id, utcnow
from voxdialog.db.repos import audit
from voxdialog.db.repos.api_keys import KEY_PREFIX, verify_api_key
from voxdialog.db.repos.logins import (
    Rotation,
    login_role,
    revoke_login,
    rotate_refresh,
    start_login,
)
from voxdialog.db.repos.users import (
    EmailTakenError,
    UserRecord,
    create_account,
    find_credentials,
    get_user,
    note_sign_in_ip,
    set_password_hash,
    user_is_active,
)
from voxdialog.security.jwt import ACCESS, REFRESH, WS_TICKET, JwtService, TokenError
from voxdialog.security.passwords import PasswordHasher, check_password_policy
from voxdialog.security.principal import Principal, Scope
from voxdialog.security.ratelimit import LoginThrottle
from voxdialog.security.tickets import SpentTickets

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Incorrect email or password."


class AuthError(Exception):
    """A refused auth request, with the HTTP status and error code the API answers with."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a sign-in or refresh returns to the client."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A user with fresh tokens."""

    user: UserRecord
    tokens: TokenPair


class AuthService:
    """Accounts and credentials for one server process.

    Args:
        db: The store.
        jwt: Issues and checks access/refresh tokens and WebSocket tickets.
        hasher: Argon2id, off the event loop.
        throttle: Login attempts per account and per IP.
        spent: Remembers redeemed WebSocket tickets.
        registration_open: Whether anyone may register a new tenant.
    """

    def __init__(
        self,
        db: Database,
        jwt: JwtService,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        spent: SpentTickets,
        *,
        registration_open: bool = True,
    ) -> None:
        self.db = db
        self.jwt = jwt
        self.hasher = hasher
        self.throttle = throttle
        self.spent = spent
        self.registration_open = registration_open
        # Admins of this tenant (the bootstrap one) operate the whole server.
        self.operator_tenant_id: str | None = None

    # --- sign-up and sign-in ------------------------------------------------------------

    async def register(
        self,
        *,
        email: str,
        password: str,
        display_name: str | None,
        tenant_name: str | None,
        ip: str | None,
    ) -> SignedIn:
        """Create an account in a new tenant (its admin) and sign it in."""
        if not self.registration_open:
            raise AuthError(403, "registration_closed", "Registration is closed on this server.")
        try:
            check_password_policy(password, email=email)
        except ValueError as exc:
            raise AuthError(400, "weak_password", str(exc)) from exc
        password_hash = await self.hasher.hash(password)
        name = (display_name or email.split("@", 1)[0]).strip() or "user"
        try:
            user = await create_account(
                self.db,
                email=email,
                password_hash=password_hash,
                display_name=name,
                tenant_name=tenant_name,
            )
        except EmailTakenError as exc:
            await audit.record_audit(self.db, "auth.register", audit.FAILURE, ip=ip)
            raise AuthError(
                409, "email_taken", "This email address is already registered."
            ) from exc
        return await self._welcome("auth.register", user, ip=ip)

    async def login(self, *, email: str, password: str, ip: str | None) -> SignedIn:
        """Check a password and sign in; the same answer for unknown users and bad passwords."""
        found = await find_credentials(self.db, email)
        # The address the owner last signed in from keeps its own budget under attack.
        trusted_ip = found.last_sign_in_ip if found is not None else None
        decision = await self.throttle.allow(email, ip or "unknown", trusted_ip=trusted_ip)
        if not decision.allowed:
            await audit.record_audit(self.db, "auth.login", audit.DENIED, ip=ip)
            raise AuthError(
                429,
                "too_many_attempts",
                "Too many sign-in attempts; try again later.",
                retry_after_s=decision.retry_after_s,
            )
        ok = await self.hasher.verify(found.password_hash if found else None, password)
        if found is None or not ok or found.user.disabled:
            await audit.record_audit(
                self.db,
                "auth.login",
                audit.FAILURE,
                tenant_id=found.user.tenant_id if found else None,
                user_id=found.user.id if found else None,
                ip=ip,
            )
            raise AuthError(401, "invalid_credentials", INVALID_CREDENTIALS)
        await self.throttle.succeeded(email, ip or "unknown")
        if found.password_hash and self.hasher.needs_rehash(found.password_hash):
            await set_password_hash(self.db, found.user.scope, await self.hasher.hash(password))
        return await self._welcome("auth.login", found.user, ip=ip)

    async def local_sign_in(self, scope: Scope, *, ip: str | None) -> SignedIn:
        """Sign in the local admin for the talk page on this machine (the route checks locality).

        Audited like a password login, under its own action so the two can be told apart.
        """
        user = await get_user(self.db, scope)
        if user is None or user.disabled:
            await audit.record_audit(
                self.db,
                "auth.local_login",
                audit.FAILURE,
                tenant_id=scope.tenant_id,
                user_id=scope.user_id,
                ip=ip,
            )
            raise AuthError(401, "invalid_credentials", "The local administrator cannot sign in.")
        return await self._welcome("auth.local_login", user, ip=ip)

    async def _welcome(self, action: str, user: UserRecord, *, ip: str | None) -> SignedIn:
        """Audit a successful sign-in (or sign-up) and open its sign-in session."""
        await audit.record_audit(
            self.db, action, audit.SUCCESS, tenant_id=user.tenant_id, user_id=user.id, ip=ip
        )
        if ip is not None:
            await note_sign_in_ip(self.db, user.scope, ip)
        return SignedIn(user, await self._sign_in(user))

    async def refresh(self, refresh_token: str, *, ip: str | None) -> TokenPair:
        """Rotate a refresh token; a reused one revokes its whole sign-in."""
        try:
            claims = self.jwt.verify(refresh_token, REFRESH)
        except TokenError as exc:
            raise AuthError(401, "invalid_token", "The refresh token is invalid.") from exc
        if claims.sid is None:
            raise AuthError(401, "invalid_token", "The refresh token is invalid.")
        scope = Scope(tenant_id=claims.tenant_id, user_id=claims.sub)
        role = await login_role(self.db, claims.sid, scope)
        new_token, new_claims = self.jwt.issue(
            REFRESH,
            user_id=claims.sub,
            tenant_id=claims.tenant_id,
            role=role or claims.role,
            sid=claims.sid,
        )
        outcome = await rotate_refresh(
            self.db,
            login_session_id=claims.sid,
            jti=claims.jti,
            new_jti=new_claims.jti,
            new_expires_at=_at(new_claims.exp),
        )
        if outcome is not Rotation.ROTATED or role is None:
            await audit.record_audit(
                self.db,
                "auth.refresh_reuse" if outcome is Rotation.REUSED else "auth.refresh",
                audit.DENIED,
                tenant_id=claims.tenant_id,
                user_id=claims.sub,
                ip=ip,
            )
            raise AuthError(401, "invalid_token", "The refresh token is invalid.")
        access, access_claims = self.jwt.issue(
            ACCESS, user_id=claims.sub, tenant_id=claims.tenant_id, role=role, sid=claims.sid
        )
        return TokenPair(access, new_token, access_claims.exp - access_claims.iat)

    async def logout(self, principal: Principal, *, ip: str | None) -> None:
        """End the caller's sign-in: its access and refresh tokens and live sockets stop."""
        if principal.login_session_id is not None:
            await revoke_login(self.db, principal.scope, principal.login_session_id, "logout")
        await audit.record_audit(
            self.db,
            "auth.logout",
            audit.SUCCESS,
            tenant_id=principal.scope.tenant_id,
            user_id=principal.scope.user_id,
            ip=ip,
        )

    async def change_password(
        self, principal: Principal, *, current: str, new: str, ip: str | None
    ) -> None:
        """Replace the caller's password after checking the current one."""
        user = await get_user(self.db, principal.scope)
        found = await find_credentials(self.db, user.email) if user and user.email else None
        ok = await self.hasher.verify(found.password_hash if found else None, current)
        if not ok:
            raise AuthError(400, "invalid_credentials", "The current password is incorrect.")
        try:
            check_password_policy(new, email=user.email if user else None)
        except ValueError as exc:
            raise AuthError(400, "weak_password", str(exc)) from exc
        await set_password_hash(self.db, principal.scope, await self.hasher.hash(new))
        await audit.record_audit(
            self.db,
            "auth.password_change",
            audit.SUCCESS,
            tenant_id=principal.scope.tenant_id,
            user_id=principal.scope.user_id,
            ip=ip,
        )

    async def _sign_in(self, user: UserRecord) -> TokenPair:
        sid = new_id()
        refresh, refresh_claims = self.jwt.issue(
            REFRESH, user_id=user.id, tenant_id=user.tenant_id, role=user.role, sid=sid
        )
        await start_login(
            self.db,
            user.scope,
            login_session_id=sid,
            refresh_jti=refresh_claims.jti,
            expires_at=_at(refresh_claims.exp),
        )
        access, claims = self.jwt.issue(
            ACCESS, user_id=user.id, tenant_id=user.tenant_id, role=user.role, sid=sid
        )
        return TokenPair(access, refresh, claims.exp - claims.iat)

    # --- credentials on requests and sockets --------------------------------------------

    async def authenticate(self, credential: str | None) -> Principal | None:
        """The caller an API key or access token stands for, or None."""
        if not credential or len(credential) > 4096:
            return None
        if credential.startswith(KEY_PREFIX):
            scope = await verify_api_key(self.db, credential)
            if scope is None:
                return None
            active, role = await user_is_active(self.db, scope)
            return self._principal(scope, role, "api_key") if active else None
        try:
            claims = self.jwt.verify(credential, ACCESS)
        except TokenError:
            return None
        return await self._from_claims(claims.sub, claims.tenant_id, claims.sid, "access_token")

    async def issue_ticket(self, principal: Principal, *, agent: str | None = None) -> str:
        """A single-use WebSocket ticket for the caller (browsers cannot set headers)."""
        token, _ = self.jwt.issue(
            WS_TICKET,
            user_id=principal.scope.user_id,
            tenant_id=principal.scope.tenant_id,
            role=principal.role,
            sid=principal.login_session_id,
            agent=agent,
        )
        return token

    async def redeem_ticket(self, ticket: str) -> Principal | None:
        """The caller of a valid, unspent ticket (spending it), or None."""
        try:
            claims = self.jwt.verify(ticket, WS_TICKET)
        except TokenError:
            return None
        # Remember the id for as long as the ticket could still verify (expiry + leeway).
        if not await self.spent.spend(claims.jti, max(1.0, claims.exp + 60 - time.time())):
            return None
        principal = await self._from_claims(claims.sub, claims.tenant_id, claims.sid, "ws_ticket")
        if principal is None:
            return None
        return Principal(
            principal.scope,
            principal.role,
            "ws_ticket",
            principal.login_session_id,
            claims.agent,
            principal.operator,
        )

    async def still_valid(self, principal: Principal) -> bool:
        """Whether a live socket's caller may go on (sign-in not ended, user enabled)."""
        if principal.via == "local":
            return True
        if principal.login_session_id is not None:
            return (
                await login_role(self.db, principal.login_session_id, principal.scope) is not None
            )
        active, _ = await user_is_active(self.db, principal.scope)
        return active

    async def _from_claims(
        self, user_id: str, tenant_id: str, sid: str | None, via: str
    ) -> Principal | None:
        scope = Scope(tenant_id=tenant_id, user_id=user_id)
        if sid is None:
            active, role = await user_is_active(self.db, scope)
            return self._principal(scope, role, via) if active else None
        current_role = await login_role(self.db, sid, scope)
        if current_role is None:
            return None
        return self._principal(scope, current_role, via, sid)

    def _principal(self, scope: Scope, role: str, via: str, sid: str | None = None) -> Principal:
        operator = role == "admin" and scope.tenant_id == self.operator_tenant_id
        return Principal(scope, role, via, login_session_id=sid, operator=operator)


def _at(epoch_s: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC)


def now_utc() -> dt.datetime:
    """The current time (re-exported for routes that stamp responses)."""
    return utcnow()
