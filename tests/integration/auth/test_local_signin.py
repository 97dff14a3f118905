"""``POST /api/auth/local``: the talk page on this machine signs in as the local admin.

Only a same-origin request from loopback, without a credential, naming a loopback host gets
tokens. Everything else (another site's page, a DNS-rebinding host name, a remote peer, a
request that already carries a credential) gets 401, and every attempt is audited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import LiveServer
from voxdialog.app import create_app
from voxdialog.settings import Settings

pytestmark = pytest.mark.models

LOCAL = "/api/auth/local"


def _port(server: LiveServer) -> int:
    port = urlsplit(server.base_url).port
    assert port is not None
    return port


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _audit(server: LiveServer, outcome: str) -> list[dict[str, Any]]:
    """The server's local sign-in audit events with ``outcome``, newest first."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get(
            "/api/admin/audit", params={"limit": 100}, headers=_bearer(server.api_key)
        )
    assert response.status_code == 200, response.text
    return [
        event
        for event in response.json()["data"]
        if event["action"] == "auth.local_login" and event["outcome"] == outcome
    ]


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the live server (its requests come from 127.0.0.1)."""
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        yield client


async def test_the_page_on_localhost_signs_in_as_the_local_admin(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    port = _port(live_server)
    before = {event["id"] for event in await _audit(live_server, "success")}
    signed = await http.post(
        LOCAL, headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
    )
    assert signed.status_code == 200, signed.text
    body = signed.json()
    me = await http.get("/api/users/me", headers=_bearer(body["access_token"]))
    local_me = await http.get("/api/users/me", headers=_bearer(live_server.api_key))
    assert me.status_code == 200
    # The same user the local API key belongs to: the local admin, operator of the server.
    assert me.json()["id"] == local_me.json()["id"] == body["user"]["id"]
    assert body["user"]["role"] == "admin"
    assert body["expires_in"] > 0
    # A real sign-in: its refresh token rotates, and it can mint WebSocket tickets.
    refreshed = await http.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200
    ticket = await http.post(
        "/api/auth/ws-ticket", headers=_bearer(refreshed.json()["access_token"])
    )
    assert ticket.status_code == 200
    new = [e for e in await _audit(live_server, "success") if e["id"] not in before]
    assert [e["user_id"] for e in new] == [body["user"]["id"]]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "[::1]:{port}", "localhost"],
    ids=["ipv4", "ipv6", "no-port"],
)
async def test_every_loopback_host_name_without_origin_is_accepted(
    live_server: LiveServer, http: httpx.AsyncClient, host: str
) -> None:
    response = await http.post(LOCAL, headers={"Host": host.format(port=_port(live_server))})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Origin": "https://evil.example"}, "foreign_origin"),
        # Same port on another name: a different origin.
        ({"Origin": "http://localhost.evil.example:{port}"}, "foreign_origin"),
        # DNS rebinding: the attacker's name resolves to 127.0.0.1, the page is same-origin.
        (
            {"Host": "rebind.evil.example:{port}", "Origin": "http://rebind.evil.example:{port}"},
            "host_not_loopback",
        ),
        ({"Host": "rebind.evil.example:{port}"}, "host_not_loopback"),
        ({"Host": "127.0.0.1.nip.io:{port}"}, "host_not_loopback"),
    ],
    ids=["foreign-origin", "lookalike-origin", "rebinding", "rebinding-no-origin", "dotted-name"],
)
async def test_other_pages_and_rebinding_names_are_refused(
    live_server: LiveServer, http: httpx.AsyncClient, headers: dict[str, str], reason: str
) -> None:
    port = _port(live_server)
    sent = {name: value.format(port=port) for name, value in headers.items()}
    before = {event["id"] for event in await _audit(live_server, "denied")}
    response = await http.post(LOCAL, headers=sent)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "local_sign_in_refused"
    assert error["type"] == "invalid_request_error"
    assert "access_token" not in response.text
    new = [e for e in await _audit(live_server, "denied") if e["id"] not in before]
    assert [e["detail"] for e in new] == [{"reason": reason}]
    assert new[0]["ip"] == "127.0.0.1"


async def test_a_request_with_a_credential_is_refused(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    # A caller with a credential uses it; local sign-in is only for credential-less pages,
    # so even a valid key must not be traded for (admin) tokens here.
    valid = await http.post(LOCAL, headers=_bearer(live_server.api_key))
    wrong = await http.post(LOCAL, headers=_bearer("vxd_not-a-key"))
    basic = await http.post(LOCAL, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert [valid.status_code, wrong.status_code, basic.status_code] == [401, 401, 401]
    assert (await _audit(live_server, "denied"))[0]["detail"] == {"reason": "credential_given"}


async def test_realtime_token_refuses_a_rebinding_host_but_honours_a_bearer(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    port = _port(live_server)
    rebinding = {"Host": f"rebind.evil.example:{port}"}
    refused = await http.post("/api/realtime-token", headers=rebinding)
    local = await http.post("/api/realtime-token", headers={"Host": f"localhost:{port}"})
    # A credential proves who the caller is, whatever name the page was opened under.
    with_key = await http.post(
        "/api/realtime-token", headers={**rebinding, **_bearer(live_server.api_key)}
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert local.status_code == 200
    assert with_key.status_code == 200


async def test_a_remote_peer_is_refused_even_naming_localhost(tmp_path: Path) -> None:
    # The live server only listens on 127.0.0.1; the app itself (no models needed) shows what
    # a request from another machine gets, with a Host and Origin that would pass locally.
    app = create_app(Settings(data_dir=tmp_path), load_models=False)
    headers = {"Host": "localhost:8000", "Origin": "http://localhost:8000"}
    async with app.router.lifespan_context(app):
        remote = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        near = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=remote, base_url="http://localhost:8000") as http:
            from_afar = await http.post(LOCAL, headers=headers)
            token_from_afar = await http.post("/api/realtime-token", headers=headers)
        async with httpx.AsyncClient(transport=near, base_url="http://localhost:8000") as http:
            from_here = await http.post(LOCAL, headers=headers)
    assert from_afar.status_code == 401
    assert from_afar.json()["error"]["code"] == "local_sign_in_refused"
    assert token_from_afar.status_code == 401
    assert from_here.status_code == 200, from_here.text
