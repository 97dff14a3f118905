"""Signed session tokens (JWT, HS256 only) following RFC 8725, the JWT best current practices.

Three kinds of token share one HMAC key and are told apart by the JOSE header ``typ`` (RFC 9068
style), so no token can be replayed as another kind: short access tokens, refresh tokens (one
``sid`` per login, for rotation) and one-minute WebSocket tickets. Verification accepts exactly
what :meth:`JwtService.issue` produces and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from voxdialog.security.files import private_dir

ACCESS = "access"
REFRESH = "refresh"
WS_TICKET = "ws-ticket"

#: RFC 8725 §3.11: explicit typing, so a token of one kind never passes as another.
_HEADER_TYPES = {ACCESS: "at+jwt", REFRESH: "rt+jwt", WS_TICKET: "wst+jwt"}
_ALGORITHM = "HS256"
#: We only ever write these two header parameters; anything else (kid, jku, jwk, x5u, x5c,
#: crit, ...) would ask the verifier to trust something the token itself names.
_ALLOWED_HEADERS = frozenset({"alg", "typ"})
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "tid", "role"]
_MAX_TOKEN_CHARS = 4096
MIN_KEY_BYTES = 32
MAX_ACCESS_TTL_S = 900
MAX_TICKET_TTL_S = 60
_KEY_FILE_BYTES = 48
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")


class TokenError(Exception):
    """A token was rejected. The message is deliberately generic: it never echoes the token."""

    def __init__(self) -> None:
        super().__init__("invalid or expired token")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token says.

    Attributes:
        sub: The user id.
        tenant_id: The tenant the user acts in.
        role: The user's role in that tenant.
        typ: The token kind (:data:`ACCESS`, :data:`REFRESH` or :data:`WS_TICKET`).
        jti: Random unique id of this token.
        sid: Session family id shared by the tokens of one login, if any.
        exp: Expiry, Unix seconds.
        iat: Issue time, Unix seconds.
        agent: The agent a WebSocket ticket is for, if any.
    """

    sub: str
    tenant_id: str
    role: str
    typ: str
    jti: str
    sid: str | None
    exp: int
    iat: int
    agent: str | None = None


class JwtService:
    """Issues and verifies the server's JWTs with one HMAC-SHA256 key."""

    def __init__(
        self,
        key: bytes,
        *,
        issuer: str = "voxdialog",
        audience: str = "voxdialog",
        access_ttl_s: int = 900,
        refresh_ttl_s: int = 14 * 86400,
        ticket_ttl_s: int = 60,
        leeway_s: int = 30,
    ) -> None:
        """Create the service.

        Args:
            key: The HMAC key, at least 32 bytes.
            issuer: Value of ``iss`` written and required.
            audience: Value of ``aud`` written and required.
            access_ttl_s: Access token lifetime, at most 900 s.
            refresh_ttl_s: Refresh token lifetime.
            ticket_ttl_s: WebSocket ticket lifetime, at most 60 s.
            leeway_s: Clock skew tolerated on ``exp``, ``nbf`` and ``iat``.

        Raises:
            ValueError: The key is too short or a lifetime is out of range.
        """
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"JWT signing key must be at least {MIN_KEY_BYTES} bytes")
        if not 0 < access_ttl_s <= MAX_ACCESS_TTL_S:
            raise ValueError(f"access token lifetime must be 1..{MAX_ACCESS_TTL_S} s")
        if not 0 < ticket_ttl_s <= MAX_TICKET_TTL_S:
            raise ValueError(f"WebSocket ticket lifetime must be 1..{MAX_TICKET_TTL_S} s")
        if refresh_ttl_s <= 0:
            raise ValueError("refresh token lifetime must be positive")
        if leeway_s < 0:
            raise ValueError("leeway must not be negative")
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._ttl_s = {ACCESS: access_ttl_s, REFRESH: refresh_ttl_s, WS_TICKET: ticket_ttl_s}
        self._leeway_s = leeway_s

    def issue(
        self,
        kind: str,
        *,
        user_id: str,
        tenant_id: str,
        role: str,
        sid: str | None = None,
        agent: str | None = None,
        now: float | None = None,
    ) -> tuple[str, TokenClaims]:
        """Sign a new token.

        Args:
            kind: :data:`ACCESS`, :data:`REFRESH` or :data:`WS_TICKET`.
            user_id: The subject (``sub``).
            tenant_id: The tenant (``tid``).
            role: The user's role in the tenant.
            sid: Session family id of the login, if any.
            agent: The agent a WebSocket ticket is for, if any.
            now: The issue time in Unix seconds; the current time when None.

        Returns:
            The compact token and the claims it carries.

        Raises:
            ValueError: ``kind`` is not a known token kind.
        """
        header_typ = _header_type(kind)
        issued_at = int(time.time() if now is None else now)
        claims = TokenClaims(
            sub=user_id,
            tenant_id=tenant_id,
            role=role,
            typ=kind,
            jti=secrets.token_urlsafe(16),
            sid=sid,
            exp=issued_at + self._ttl_s[kind],
            iat=issued_at,
            agent=agent,
        )
        token = jwt.encode(
            self._payload(claims), self._key, algorithm=_ALGORITHM, headers={"typ": header_typ}
        )
        return token, claims

    def verify(self, token: str, kind: str, *, now: float | None = None) -> TokenClaims:
        """Check a token of the given kind and return its claims.

        Args:
            token: The compact JWT as received.
            kind: The kind the caller expects; any other kind is rejected.
            now: The current time in Unix seconds; the clock when None.

        Returns:
            The token's claims.

        Raises:
            TokenError: The token is malformed, forged, of another kind, expired, not yet
                valid, or lacks a required claim.
            ValueError: ``kind`` is not a known token kind.
        """
        expected_typ = _header_type(kind)
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
            raise TokenError
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError from None
        _check_header(header, expected_typ)
        payload = self._decode(token)
        self._check_times(payload, time.time() if now is None else now)
        return _claims_from(payload, kind)

    def _payload(self, claims: TokenClaims) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": claims.sub,
            "iat": claims.iat,
            "nbf": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
            "tid": claims.tenant_id,
            "role": claims.role,
            "sid": claims.sid,
            "agent": claims.agent,
        }
        return {name: value for name, value in payload.items() if value is not None}

    def _decode(self, token: str) -> dict[str, Any]:
        # Times are checked by _check_times so that callers (and tests) can pass ``now``.
        try:
            return jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway_s,
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "strict_aud": True,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError:
            raise TokenError from None

    def _check_times(self, payload: dict[str, Any], now: float) -> None:
        exp, nbf, iat = (payload["exp"], payload["nbf"], payload["iat"])  # required by _decode
        if not all(_is_int(value) for value in (exp, nbf, iat)):
            raise TokenError
        if exp <= now - self._leeway_s:
            raise TokenError
        if nbf > now + self._leeway_s or iat > now + self._leeway_s:
            raise TokenError


def _header_type(kind: str) -> str:
    try:
        return _HEADER_TYPES[kind]
    except KeyError:
        raise ValueError(f"unknown token kind {kind!r}") from None


def _check_header(header: dict[str, Any], expected_typ: str) -> None:
    # Checked before the signature so that alg and key choice never come from the token.
    if header.get("alg") != _ALGORITHM or header.get("typ") != expected_typ:
        raise TokenError
    if not header.keys() <= _ALLOWED_HEADERS:
        raise TokenError


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _claims_from(payload: dict[str, Any], kind: str) -> TokenClaims:
    required = {name: payload[name] for name in ("sub", "jti", "tid", "role")}
    optional = {name: payload.get(name) for name in ("sid", "agent")}
    if not all(isinstance(value, str) and value for value in required.values()):
        raise TokenError
    if not all(value is None or isinstance(value, str) for value in optional.values()):
        raise TokenError
    return TokenClaims(
        sub=required["sub"],
        tenant_id=required["tid"],
        role=required["role"],
        typ=kind,
        jti=required["jti"],
        sid=optional["sid"],
        exp=payload["exp"],
        iat=payload["iat"],
        agent=optional["agent"],
    )


def load_or_create_key(path: Path) -> bytes:
    """The signing key stored at ``path``, created (48 random bytes, mode 0600) when missing.

    Creation is atomic: the key is written to a private temporary file and hard-linked into
    place, so server workers starting together agree on one key and never read a half-written
    file.

    Args:
        path: The key file.

    Returns:
        The key bytes.

    Raises:
        ValueError: The file exists but holds fewer than 32 bytes. It is never replaced: a
            changed key would silently log every user out, and a short one is a setup error.
    """
    if not path.exists():
        created = _create_key_file(path)
        if created is not None:
            return created
    key = path.read_bytes()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"JWT key file {path} holds {len(key)} bytes; at least {MIN_KEY_BYTES} bytes are "
            "required (refusing to replace it: delete it to generate a new key)"
        )
    return key


def _create_key_file(path: Path) -> bytes | None:
    private_dir(path.parent)
    key = secrets.token_bytes(_KEY_FILE_BYTES)
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        os.link(scratch, path)  # fails if another process created the key first
    except FileExistsError:
        return None
    finally:
        scratch.unlink(missing_ok=True)
    return key


def key_from_setting(value: str) -> bytes:
    """Decode a configured signing secret.

    Forms are tried from the strictest: hex (even length, hex digits only), then base64 or
    base64url (padding optional), then the raw UTF-8 text.

    Args:
        value: The configured secret; surrounding whitespace is ignored.

    Returns:
        The key bytes.

    Raises:
        ValueError: The decoded key is shorter than 32 bytes.
    """
    text = value.strip()
    key = _decode_hex(text) or _decode_base64(text) or text.encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the configured JWT secret must decode to at least {MIN_KEY_BYTES} bytes")
    return key


def _decode_hex(text: str) -> bytes | None:
    return bytes.fromhex(text) if _HEX.fullmatch(text) else None


def _decode_base64(text: str) -> bytes | None:
    if not _BASE64.fullmatch(text):
        return None
    unpadded = text.rstrip("=")
    if len(unpadded) % 4 == 1:
        return None
    standard = unpadded.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error:
        return None
