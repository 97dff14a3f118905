"""Seed a live server through its own HTTP API (tests): tenants, members and their objects.

Everything goes through the public routes, as a client would, so seeded data is shaped
exactly like real data. Failures raise :class:`SeedError` with the status and the error
object of the answer (never a credential).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

#: Objects every tenant can own, and the collection route that creates one.
COLLECTIONS = {
    "agent": "/api/agents",
    "project": "/api/projects",
    "task": "/api/tasks",
    "api_key": "/api/api-keys",
}


class SeedError(RuntimeError):
    """The server refused a seeding request."""

    def __init__(self, method: str, path: str, response: httpx.Response) -> None:
        error = _error_of(response)
        super().__init__(f"{method} {path} answered {response.status_code}: {error}")
        self.status = response.status_code


@dataclass(frozen=True, slots=True)
class Account:
    """A signed-in user of a live server.

    Attributes:
        user_id: The user's id.
        tenant_id: The tenant the user belongs to.
        role: ``admin`` or ``member``.
        email: The sign-in email.
        password: The sign-in password.
        access_token: A fresh access token.
        refresh_token: The refresh token of the same sign-in.
    """

    user_id: str
    tenant_id: str
    role: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header for this account's access token."""
        return bearer(self.access_token)


def bearer(credential: str) -> dict[str, str]:
    """The ``Authorization`` header for ``credential`` (an API key, token or ticket)."""
    return {"Authorization": f"Bearer {credential}"}


def new_email(prefix: str = "seed") -> str:
    """A fresh, deliverable-looking email address."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def new_password() -> str:
    """A fresh password that passes the server's policy."""
    return f"correct horse {uuid.uuid4()}"


def register(http: httpx.Client, *, tenant_name: str) -> Account:
    """Sign up a new tenant; its first user is the tenant's admin.

    Args:
        http: A client of the server (``base_url`` set).
        tenant_name: The new tenant's display name.

    Returns:
        The signed-in admin.
    """
    email, password = new_email("admin"), new_password()
    body = {"email": email, "password": password, "tenant_name": tenant_name}
    return _signed_in(_call(http, "POST", "/api/auth/register", 201, body), email, password)


def login(http: httpx.Client, email: str, password: str) -> Account:
    """Sign in with email and password."""
    body = {"email": email, "password": password}
    return _signed_in(_call(http, "POST", "/api/auth/login", 200, body), email, password)


def add_user(http: httpx.Client, admin: Account, *, role: str = "member") -> Account:
    """Have ``admin`` add a user to its tenant, then sign that user in.

    Args:
        http: A client of the server.
        admin: An admin of the tenant.
        role: ``member`` or ``admin``.

    Returns:
        The new, signed-in user.
    """
    email, password = new_email(role), new_password()
    body = {"email": email, "password": password, "role": role}
    _call(http, "POST", "/api/admin/users", 201, body, admin.headers)
    return login(http, email, password)


def create(
    http: httpx.Client, account: Account, kind: str, body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Create one object of ``kind`` (a key of :data:`COLLECTIONS`) as ``account``.

    Args:
        http: A client of the server.
        account: Who owns the object.
        kind: ``agent``, ``project``, ``task`` or ``api_key``.
        body: The request body; a unique name or title when omitted.

    Returns:
        The created object as answered (an API key's answer includes the key itself).
    """
    payload = dict(body) if body is not None else _default_body(kind)
    answer: dict[str, Any] = _call(http, "POST", COLLECTIONS[kind], 201, payload, account.headers)
    return answer


def create_many(http: httpx.Client, account: Account, kind: str, count: int) -> list[str]:
    """Create ``count`` objects of ``kind`` as ``account``; returns their ids."""
    return [create(http, account, kind)["id"] for _ in range(count)]


def _default_body(kind: str) -> dict[str, Any]:
    label = f"seed {uuid.uuid4().hex[:10]}"
    return {"task": {"title": label}}.get(kind, {"name": label})


def _signed_in(answer: Any, email: str, password: str) -> Account:
    user = answer["user"]
    return Account(
        user_id=user["id"],
        tenant_id=user["tenant_id"],
        role=user["role"],
        email=email,
        password=password,
        access_token=answer["access_token"],
        refresh_token=answer["refresh_token"],
    )


def _call(
    http: httpx.Client,
    method: str,
    path: str,
    expected: int,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> Any:
    response = http.request(method, path, json=dict(body), headers=dict(headers or {}))
    if response.status_code != expected:
        raise SeedError(method, path, response)
    return response.json()


def _error_of(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return body.get("error", body) if isinstance(body, dict) else body
