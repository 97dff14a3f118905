"""Local sign-in is never handed out through a reverse proxy (issue 12, item 3).

A proxy on the same machine connects from 127.0.0.1 and may pass on a loopback Host: exactly
what the talk page on localhost sends. ``POST /api/auth/local`` and the no-credential path of
``POST /api/realtime-token`` refuse a request that carries forwarding headers or comes over
HTTP/1.0 (nginx's default upstream protocol), and refuse every request when the operator turns
local sign-in off or configures a proxy. Each refusal is audited with its reason.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from voxdialog.api.routes.auth import LOCAL_LOGIN
from voxdialog.app import create_app
from voxdialog.db.repos.audit import DENIED, list_audit
from voxdialog.runtime import Runtime
from voxdialog.settings import AuthSettings, Settings

LOCAL = "/api/auth/local"
TOKEN = "/api/realtime-token"
PAGE = {"Host": "localhost:8000", "Origin": "http://localhost:8000"}


@dataclass(frozen=True, slots=True)
class LocalServer:
    app: FastAPI
    http: httpx.AsyncClient  # its requests come from 127.0.0.1

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def denials(self) -> list[Any]:
        """The reasons of the local sign-in refusals audited so far, oldest first."""
        events = await list_audit(self.runtime.db, None, limit=1_000)
        local = [e for e in reversed(events) if e.action == LOCAL_LOGIN and e.outcome == DENIED]
        return [e.detail["reason"] for e in local]


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[LocalServer]:
    app = create_app(settings, load_models=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as http:
            yield LocalServer(app, http)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LocalServer]:
    async with serving(Settings(data_dir=tmp_path)) as running:
        yield running


async def test_the_page_on_localhost_without_a_proxy_still_signs_in(server: LocalServer) -> None:
    signed = await server.http.post(LOCAL, headers=PAGE)
    ticket = await server.http.post(TOKEN, headers=PAGE)
    assert signed.status_code == 200, signed.text
    assert signed.json()["user"]["role"] == "admin"
    assert ticket.status_code == 200, ticket.text


@pytest.mark.parametrize(
    "header",
    [
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Host", "localhost:8000"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Server", "proxy.example"),
        ("Forwarded", "for=203.0.113.7;proto=https"),
        ("X-Real-IP", "203.0.113.7"),
        ("Via", "1.1 caddy"),
        ("True-Client-IP", "203.0.113.7"),
        ("CF-Connecting-IP", "203.0.113.7"),
        ("X-Client-IP", "203.0.113.7"),
    ],
    ids=lambda header: header[0].lower(),
)
async def test_a_request_with_forwarding_headers_gets_no_local_admin(
    server: LocalServer, header: tuple[str, str]
) -> None:
    headers = {**PAGE, header[0]: header[1]}
    signed = await server.http.post(LOCAL, headers=headers)
    ticket = await server.http.post(TOKEN, headers=headers)
    assert signed.status_code == 401
    assert signed.json()["error"]["code"] == "local_sign_in_refused"
    assert "access_token" not in signed.text
    assert ticket.status_code == 401
    assert ticket.json()["error"]["code"] == "invalid_api_key"
    assert await server.denials() == ["forwarded"]


async def test_a_credential_still_gets_a_ticket_through_a_proxy(server: LocalServer) -> None:
    key = (server.runtime.settings.data_dir / "local-api-key").read_text().strip()
    headers = {**PAGE, "X-Forwarded-For": "203.0.113.7", "Authorization": f"Bearer {key}"}
    assert (await server.http.post(TOKEN, headers=headers)).status_code == 200


async def test_http_1_0_which_nginx_speaks_to_its_upstream_gets_no_local_admin(
    server: LocalServer,
) -> None:
    # nginx's proxy_pass defaults: HTTP/1.0, Host set to the upstream's (127.0.0.1:8000), no
    # forwarding headers. No browser sends HTTP/1.0.
    async def call(path: str) -> tuple[int, dict[str, Any]]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.0",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-length", b"0")],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await server.app(scope, receive, send)
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return int(sent[0]["status"]), json.loads(body)

    status, body = await call(LOCAL)
    token_status, _ = await call(TOKEN)
    assert (status, body["error"]["code"]) == (401, "local_sign_in_refused")
    assert token_status == 401
    assert await server.denials() == ["http_1_0"]


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"auth": AuthSettings(local_sign_in=False)}, "disabled"),
        ({"trusted_proxies": ["127.0.0.1"]}, "behind_proxy"),
    ],
    ids=["local-sign-in-off", "trusted-proxies-set"],
)
async def test_an_operator_setting_turns_local_sign_in_off_for_every_request(
    tmp_path: Path, settings: dict[str, Any], reason: str
) -> None:
    async with serving(Settings(data_dir=tmp_path, **settings)) as running:
        signed = await running.http.post(LOCAL, headers=PAGE)
        bare = await running.http.post(LOCAL)
        ticket = await running.http.post(TOKEN, headers=PAGE)
        assert [signed.status_code, bare.status_code, ticket.status_code] == [401, 401, 401]
        assert await running.denials() == [reason, reason]


def test_the_settings_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert Settings(data_dir=tmp_path).trusted_proxies == []
    assert Settings(data_dir=tmp_path).auth.local_sign_in is True
    # uvicorn's own variable says there is a proxy in front: local sign-in goes off with it.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1, 10.0.0.2")
    assert Settings(data_dir=tmp_path).trusted_proxies == ["127.0.0.1", "10.0.0.2"]
    monkeypatch.setenv("VOXDIALOG_TRUSTED_PROXIES", '["192.0.2.1"]')
    monkeypatch.setenv("VOXDIALOG_AUTH__LOCAL_SIGN_IN", "false")
    configured = Settings(data_dir=tmp_path)
    assert configured.trusted_proxies == ["192.0.2.1"]
    assert configured.auth.local_sign_in is False


async def test_forwarded_allow_ips_alone_turns_local_sign_in_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    async with serving(Settings(data_dir=tmp_path)) as running:
        assert (await running.http.post(LOCAL, headers=PAGE)).status_code == 401
        assert await running.denials() == ["behind_proxy"]
