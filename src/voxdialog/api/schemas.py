"""Request and response bodies of the account routes (``/api/auth``, ``/api/users``, keys)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool, StringConstraints

from voxdialog.db.repos.api_keys import ApiKeyInfo
from voxdialog.db.repos.users import UserRecord

T = TypeVar("T")
R = TypeVar("R")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Long enough for passphrases (NIST: at least 64); the policy check gives the exact message.
Password = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class Strict(BaseModel):
    """Unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    """``POST /api/auth/register``."""

    email: EmailStr = Field(max_length=320)
    password: Password
    display_name: Name | None = None
    tenant_name: Name | None = None


class LoginIn(Strict):
    """``POST /api/auth/login``."""

    email: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    password: Password


class RefreshIn(Strict):
    """``POST /api/auth/refresh``."""

    refresh_token: Token


class TicketIn(Strict):
    """``POST /api/auth/ws-ticket``."""

    agent: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class UserOut(BaseModel):
    """A user as shown to itself and to admins."""

    id: str
    tenant_id: str
    email: str | None
    display_name: str
    role: Literal["admin", "member"]
    disabled: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, user: UserRecord) -> UserOut:
        """From the store's record."""
        role: Literal["admin", "member"] = "admin" if user.role == "admin" else "member"
        return cls(
            id=user.id,
            tenant_id=user.tenant_id,
            email=user.email,
            display_name=user.display_name,
            role=role,
            disabled=user.disabled,
            created_at=user.created_at,
        )


class TokensOut(BaseModel):
    """Fresh tokens."""

    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int


class SignedInOut(TokensOut):
    """A sign-up or sign-in: the user and its tokens."""

    user: UserOut


class TicketOut(BaseModel):
    """A single-use ticket for ``/v1/realtime`` (``?ticket=`` or the subprotocol)."""

    ticket: str
    expires_in: int


class ProfilePatch(Strict):
    """``PATCH /api/users/me``."""

    display_name: Name | None = None
    email: EmailStr | None = Field(None, max_length=320)


class PasswordChangeIn(Strict):
    """``POST /api/users/me/password``."""

    current_password: Password
    new_password: Password


class UserSettings(Strict):
    """Personal preferences; ``PUT`` replaces them all."""

    language: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | (
        None
    ) = None
    default_agent: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    stt: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="Preferred STT provider name (one of the server's)."
    )
    voice: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    speaking_rate: float | None = Field(None, ge=0.5, le=2.0)
    push_to_talk: StrictBool = False


class ApiKeyIn(Strict):
    """``POST /api/api-keys``."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class ApiKeyOut(BaseModel):
    """An API key as listed (never the key)."""

    id: str
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, info: ApiKeyInfo) -> ApiKeyOut:
        """From the store's record."""
        return cls(
            id=info.id,
            name=info.name,
            prefix=info.prefix,
            created_at=info.created_at,
            last_used_at=info.last_used_at,
            revoked_at=info.revoked_at,
        )


class NewApiKeyOut(ApiKeyOut):
    """A new key: the only time ``key`` is shown."""

    key: str


class Page(BaseModel, Generic[T]):
    """A page of a list (``has_more`` tells whether another page follows)."""

    data: list[T]
    has_more: bool


def page_of(rows: Sequence[R], limit: int, convert: Callable[[R], T]) -> Page[T]:
    """The page for ``rows`` fetched with ``limit + 1``: the extra row only says more follow."""
    return Page[T](data=[convert(row) for row in rows[:limit]], has_more=len(rows) > limit)
