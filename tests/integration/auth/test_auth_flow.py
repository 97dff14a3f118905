"""Sign-up, sign-in, refresh rotation, sign-out and tickets against a real server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.conftest import LiveServer, serving
from voxdialog.settings import AuthSettings, RateLimitSettings, Settings
from voxdialog.testing.server import free_port

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose sockets re-check their sign-in every second."""
    data_dir = tmp_path_factory.mktemp("auth-data")
    settings = Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=free_port(),
        auth=AuthSettings(session_check_s=1.0),
        rate_limits=RateLimitSettings(
            login_per_account=5, login_per_ip=1000, register_per_ip=1000, per_ip=100_000
        ),
    )
    with serving(settings) as server:
        yield server


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def _password() -> str:
    return f"correct horse {uuid.uuid4().hex[:8]}"


async def _register(http: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"email": _email(), "password": _password(), **extra}
    response = await http.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    return {**response.json(), "password": body["password"], "email": body["email"]}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_creates_an_admin_of_a_new_tenant_and_signs_in(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        signed = await _register(http, display_name="Ada", tenant_name="Acme")
        me = await http.get("/api/users/me", headers=_bearer(signed["access_token"]))
    assert signed["token_type"] == "Bearer"
    assert 0 < signed["expires_in"] <= 900
    assert signed["user"]["role"] == "admin"
    assert me.status_code == 200
    assert me.json()["display_name"] == "Ada"
    assert me.json()["tenant_id"] == signed["user"]["tenant_id"]


async def test_weak_duplicate_and_malformed_registrations_are_refused(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        first = await _register(http)
        weak = await http.post(
            "/api/auth/register", json={"email": _email(), "password": "password1"}
        )
        short = await http.post("/api/auth/register", json={"email": _email(), "password": "a1b2"})
        taken = await http.post(
            "/api/auth/register", json={"email": first["email"].upper(), "password": _password()}
        )
        bad_email = await http.post(
            "/api/auth/register", json={"email": "not-an-email", "password": _password()}
        )
        extra = await http.post(
            "/api/auth/register",
            json={"email": _email(), "password": _password(), "role": "admin"},
        )
    assert weak.status_code == 400
    assert weak.json()["error"]["code"] == "weak_password"
    assert short.status_code == 400
    assert taken.status_code == 409
    assert bad_email.status_code == 400
    assert extra.status_code == 400


async def test_unknown_user_and_wrong_password_get_the_same_answer(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        wrong = await http.post(
            "/api/auth/login", json={"email": user["email"], "password": "wrong password 123"}
        )
        unknown = await http.post(
            "/api/auth/login", json={"email": _email(), "password": "wrong password 123"}
        )
        right = await http.post(
            "/api/auth/login", json={"email": user["email"], "password": user["password"]}
        )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert right.status_code == 200
    assert right.json()["user"]["id"] == user["user"]["id"]


async def test_repeated_failures_lock_the_account_well_before_100_tries(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        statuses = []
        for _ in range(12):
            response = await http.post(
                "/api/auth/login", json={"email": user["email"], "password": "not it at all 1"}
            )
            statuses.append(response.status_code)
        blocked = await http.post(
            "/api/auth/login", json={"email": user["email"], "password": user["password"]}
        )
    assert statuses[:5] == [401] * 5
    assert 429 in statuses
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1


async def test_refresh_rotates_and_a_reused_token_ends_the_sign_in(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        first = await http.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]})
        assert first.status_code == 200
        rotated = first.json()
        assert rotated["refresh_token"] != user["refresh_token"]
        assert (
            await http.get("/api/users/me", headers=_bearer(rotated["access_token"]))
        ).is_success
        # The spent token again: theft is assumed, the whole family is revoked.
        reuse = await http.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]})
        after = await http.post(
            "/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
        )
        me = await http.get("/api/users/me", headers=_bearer(rotated["access_token"]))
    assert reuse.status_code == 401
    assert after.status_code == 401
    assert me.status_code == 401


async def test_tokens_of_the_wrong_kind_are_refused(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        refresh_as_access = await http.get("/api/users/me", headers=_bearer(user["refresh_token"]))
        access_as_refresh = await http.post(
            "/api/auth/refresh", json={"refresh_token": user["access_token"]}
        )
        ticket = (
            await http.post("/api/auth/ws-ticket", headers=_bearer(user["access_token"]))
        ).json()["ticket"]
        ticket_as_access = await http.get("/api/users/me", headers=_bearer(ticket))
    assert refresh_as_access.status_code == 401
    assert access_as_refresh.status_code == 401
    assert ticket_as_access.status_code == 401


async def test_logout_ends_the_tokens_of_that_sign_in_only(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        other = (
            await http.post(
                "/api/auth/login", json={"email": user["email"], "password": user["password"]}
            )
        ).json()
        out = await http.post("/api/auth/logout", headers=_bearer(user["access_token"]))
        me = await http.get("/api/users/me", headers=_bearer(user["access_token"]))
        refresh = await http.post(
            "/api/auth/refresh", json={"refresh_token": user["refresh_token"]}
        )
        still = await http.get("/api/users/me", headers=_bearer(other["access_token"]))
    assert out.status_code == 204
    assert me.status_code == 401
    assert refresh.status_code == 401
    assert still.status_code == 200


async def test_api_keys_are_shown_once_work_and_can_be_revoked(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        auth = _bearer(user["access_token"])
        created = await http.post("/api/api-keys", json={"name": "laptop"}, headers=auth)
        key = created.json()["key"]
        listed = (await http.get("/api/api-keys", headers=auth)).json()
        with_key = await http.get("/api/users/me", headers=_bearer(key))
        revoked = await http.delete(f"/api/api-keys/{created.json()['id']}", headers=auth)
        after = await http.get("/api/users/me", headers=_bearer(key))
        other = await _register(http)
        foreign = await http.delete(
            f"/api/api-keys/{created.json()['id']}", headers=_bearer(other["access_token"])
        )
    assert created.status_code == 201
    assert [k["name"] for k in listed] == ["laptop"]
    assert "key" not in listed[0]
    assert with_key.json()["id"] == user["user"]["id"]
    assert revoked.status_code == 204
    assert after.status_code == 401
    assert foreign.status_code == 404


async def test_profile_and_settings_round_trip(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        auth = _bearer(user["access_token"])
        patched = await http.patch("/api/users/me", json={"display_name": "Grace"}, headers=auth)
        put = await http.put(
            "/api/users/me/settings",
            json={"language": "en-GB", "speaking_rate": 1.2, "push_to_talk": True},
            headers=auth,
        )
        got = await http.get("/api/users/me/settings", headers=auth)
        bad = await http.put("/api/users/me/settings", json={"speaking_rate": 9}, headers=auth)
    assert patched.json()["display_name"] == "Grace"
    assert put.status_code == 200
    assert got.json()["language"] == "en-GB"
    assert got.json()["push_to_talk"] is True
    assert bad.status_code == 400


async def _ticket(http: httpx.AsyncClient, access_token: str) -> str:
    response = await http.post("/api/auth/ws-ticket", headers=_bearer(access_token))
    assert response.status_code == 200
    ticket: str = response.json()["ticket"]
    return ticket


async def _first_event(ws: websockets.ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
    return event


async def _until_closed(ws: websockets.ClientConnection) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    try:
        while True:  # the server re-checks every second here (60 s at most by default)
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
    except ConnectionClosed:
        return events


async def test_a_websocket_ticket_works_once(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        ticket = await _ticket(http, user["access_token"])
    url = f"{server.ws_url}/v1/realtime?ticket={ticket}"
    async with websockets.connect(url) as ws:
        assert (await _first_event(ws))["type"] == "session.created"
    async with websockets.connect(url) as ws:
        refused = await _first_event(ws)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert refused["type"] == "error"
    assert refused["error"]["code"] == "invalid_api_key"


async def test_a_foreign_origin_is_refused_at_the_handshake(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        ticket = await _ticket(http, user["access_token"])
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(
            f"{server.ws_url}/v1/realtime?ticket={ticket}",
            origin=websockets.Origin("https://evil.example"),
        ):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("scheme", "admitted"), [("http", True), ("https", False), ("ftp", False), ("null", False)]
)
async def test_a_same_host_origin_counts_only_with_the_sockets_own_scheme(
    server: LiveServer, scheme: str, admitted: bool
) -> None:
    # A page served over another scheme (or a sandboxed one) is another origin, host or not.
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        ticket = await _ticket(http, user["access_token"])
    host = server.base_url.split("://", 1)[1]
    origin = websockets.Origin(f"{scheme}://{host}")
    url = f"{server.ws_url}/v1/realtime?ticket={ticket}"
    if admitted:
        async with websockets.connect(url, origin=origin) as ws:
            assert (await _first_event(ws))["type"] == "session.created"
        return
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, origin=origin):
            pass
    assert refused.value.response.status_code == 403


async def test_logout_closes_the_live_socket_of_that_sign_in(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await _register(http)
        headers = _bearer(user["access_token"])
        async with websockets.connect(
            f"{server.ws_url}/v1/realtime", additional_headers=headers
        ) as ws:
            assert (await _first_event(ws))["type"] == "session.created"
            assert (await http.post("/api/auth/logout", headers=headers)).status_code == 204
            events = await _until_closed(ws)
    assert any(e.get("error", {}).get("code") == "session_revoked" for e in events)
