"""R11: failed sign-ins from one address do not lock the owner out of their own account.

Clients connect from different loopback addresses (127.0.0.0/8 is all loopback on Linux), so
the server sees an attacker and the owner as two addresses.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.integration.conftest import LiveServer, serving
from voxdialog.settings import Settings
from voxdialog.testing.server import free_port

pytestmark = pytest.mark.models

OWNER = "127.0.0.1"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Default sign-in limits: 5 a minute per account and address, 20 a day per account.
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("lockout"), host="127.0.0.1", port=free_port()
    )
    with serving(settings) as live:
        yield live


@asynccontextmanager
async def _from(server: LiveServer, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=server.base_url, transport=transport) as http:
        yield http


async def _owner(server: LiveServer) -> str:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    async with _from(server, OWNER) as http:
        body = {"email": email, "password": PASSWORD}
        assert (await http.post("/api/auth/register", json=body)).status_code == 201
    return email


async def _login(http: httpx.AsyncClient, email: str, password: str) -> int:
    response = await http.post("/api/auth/login", json={"email": email, "password": password})
    return response.status_code


async def test_failures_from_another_address_leave_the_owner_able_to_sign_in(
    server: LiveServer,
) -> None:
    email = await _owner(server)
    async with _from(server, "127.0.0.66") as attacker:
        tries = [await _login(attacker, email, f"guess {n}") for n in range(8)]
    assert tries == [401] * 5 + [429] * 3
    async with _from(server, OWNER) as owner:
        assert await _login(owner, email, PASSWORD) == 200


async def test_a_spread_attack_hits_the_account_ceiling_but_not_the_owner_s_address(
    server: LiveServer,
) -> None:
    email = await _owner(server)
    answers = []
    for n in range(25):
        async with _from(server, f"127.0.1.{n + 1}") as attacker:
            answers.append(await _login(attacker, email, f"guess {n}"))
    assert answers == [401] * 20 + [429] * 5  # the ceiling: 20 failures, well under 100
    async with _from(server, "127.0.2.1") as stranger:
        assert await _login(stranger, email, PASSWORD) == 429
    async with _from(server, OWNER) as owner:
        assert await _login(owner, email, PASSWORD) == 200
    async with _from(server, "127.0.2.1") as elsewhere:  # a success forgives the account
        assert await _login(elsewhere, email, PASSWORD) == 200


async def test_unknown_user_and_wrong_password_get_the_same_answer(server: LiveServer) -> None:
    email = await _owner(server)
    async with _from(server, "127.0.3.1") as http:
        wrong = await http.post("/api/auth/login", json={"email": email, "password": "nope"})
        unknown = await http.post(
            "/api/auth/login", json={"email": f"x{email}", "password": "nope"}
        )
    assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())
