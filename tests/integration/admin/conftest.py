"""One server for the admin tests (package-wide: the models load once), and the tenants,
admins and members they act on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.integration.conftest import LiveServer, serving
from voxdialog.settings import AuthSettings, RateLimitSettings, Settings
from voxdialog.testing.seed import bearer
from voxdialog.testing.server import free_port

#: What a Prometheus scraper of the admin test server sends to ``/metrics``.
METRICS_TOKEN = "scrape-" + uuid.uuid4().hex


@pytest.fixture(scope="package")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Like ``live_server``, but live sockets re-check their sign-in every second (so a
    disabled user's socket closes quickly) and the limits fit many sign-ups from one IP."""
    data_dir = tmp_path_factory.mktemp("admin-data")
    settings = Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=free_port(),
        auth=AuthSettings(session_check_s=1.0),
        rate_limits=RateLimitSettings(login_per_ip=1000, register_per_ip=1000, per_ip=100_000),
        metrics_token=SecretStr(METRICS_TOKEN),
    )
    with serving(settings) as server:
        yield server


@dataclass(frozen=True, slots=True)
class Account:
    """A signed-in user of the test server."""

    id: str
    tenant_id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        """The bearer header of this user's access token."""
        return bearer(self.access_token)


def new_email() -> str:
    """An address nobody registered."""
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def new_password() -> str:
    """A password the policy accepts."""
    return f"correct horse {uuid.uuid4().hex[:8]}"


def _account(body: dict[str, Any], email: str, password: str) -> Account:
    return Account(
        id=body["user"]["id"],
        tenant_id=body["user"]["tenant_id"],
        email=email,
        password=password,
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


def register(http: httpx.Client, tenant_name: str) -> Account:
    """A new tenant and its admin, signed in."""
    email, password = new_email(), new_password()
    response = http.post(
        "/api/auth/register",
        json={"email": email, "password": password, "tenant_name": tenant_name},
    )
    assert response.status_code == 201, response.text
    return _account(response.json(), email, password)


def login(http: httpx.Client, email: str, password: str) -> Account:
    """Sign in an existing user."""
    response = http.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return _account(response.json(), email, password)


def add_user(http: httpx.Client, admin: Account, *, role: str = "member") -> Account:
    """Create a user in ``admin``'s tenant through the admin API, then sign it in."""
    email, password = new_email(), new_password()
    response = http.post(
        "/api/admin/users",
        headers=admin.headers,
        json={"email": email, "password": password, "role": role, "display_name": "Test"},
    )
    assert response.status_code == 201, response.text
    return login(http, email, password)


@dataclass(frozen=True, slots=True)
class Tenants:
    """Two tenants: A with an admin and a member, B with an admin."""

    admin_a: Account
    member_a: Account
    admin_b: Account


@pytest.fixture(scope="package")
def http(admin_server: LiveServer) -> Iterator[httpx.Client]:
    """A client of the admin test server."""
    with httpx.Client(base_url=admin_server.base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="package")
def tenants(http: httpx.Client) -> Tenants:
    """Tenants A and B, shared by the tests that only read them."""
    admin_a = register(http, "Tenant A")
    return Tenants(
        admin_a=admin_a, member_a=add_user(http, admin_a), admin_b=register(http, "Tenant B")
    )


@pytest.fixture
def operator(admin_server: LiveServer) -> dict[str, str]:
    """The local admin's API key: an admin of the bootstrap tenant, who sees every tenant."""
    return bearer(admin_server.api_key)
