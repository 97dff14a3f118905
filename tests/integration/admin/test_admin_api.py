"""``/api/admin`` against a real server: who may see and change what, and what it shows."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosed

from tests.integration.admin.conftest import (
    Tenants,
    add_user,
    login,
    new_email,
    new_password,
    register,
)
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.models

PATCH_BODY = {"display_name": "Renamed"}
NEW_USER = {"email": "never-created@example.com", "password": "correct horse battery"}


def admin_routes(user_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every admin route, with a valid body where it takes one."""
    return [
        ("GET", "/api/admin/tenants", None),
        ("GET", "/api/admin/users", None),
        ("POST", "/api/admin/users", NEW_USER),
        ("GET", f"/api/admin/users/{user_id}", None),
        ("PATCH", f"/api/admin/users/{user_id}", PATCH_BODY),
        ("DELETE", f"/api/admin/users/{user_id}", None),
        ("GET", "/api/admin/sessions/live", None),
        ("GET", "/api/admin/metrics", None),
        ("GET", "/api/admin/providers", None),
        ("GET", "/api/admin/errors", None),
        ("GET", "/api/admin/audit", None),
    ]


def call(
    http: httpx.Client, method: str, path: str, body: Any, headers: dict[str, str] | None
) -> httpx.Response:
    return http.request(method, path, json=body, headers=headers)


def get(http: httpx.Client, path: str, headers: dict[str, str]) -> Any:
    response = http.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def realtime(server: LiveServer, token: str) -> Any:
    """The official SDK's Realtime connection manager for a bearer credential."""
    api = AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key=token)
    return api.realtime.connect(model="local-voice")


async def session_ids(
    http: httpx.AsyncClient, headers: dict[str, str], user_id: str
) -> list[dict[str, Any]]:
    response = await http.get("/api/admin/sessions/live", headers=headers)
    assert response.status_code == 200, response.text
    return [s for s in response.json() if s["user_id"] == user_id]


# --- who may call ---------------------------------------------------------------------------


def test_without_a_credential_every_admin_route_is_401(
    http: httpx.Client, tenants: Tenants
) -> None:
    for method, path, body in admin_routes(tenants.member_a.id):
        response = call(http, method, path, body, None)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_member_gets_403_on_every_admin_route(http: httpx.Client, tenants: Tenants) -> None:
    member = tenants.member_a
    assert get(http, "/api/users/me", member.headers)["role"] == "member"
    for method, path, body in admin_routes(member.id):
        response = call(http, method, path, body, member.headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    # Nothing a refused call asked for happened.
    assert get(http, "/api/users/me", member.headers)["display_name"] == "Test"


# --- tenant isolation -----------------------------------------------------------------------


def test_a_tenant_admin_sees_only_its_own_tenant(http: httpx.Client, tenants: Tenants) -> None:
    a = tenants.admin_a
    listed = get(http, "/api/admin/tenants", a.headers)["data"]
    users = get(http, "/api/admin/users", a.headers)["data"]
    audit = get(http, "/api/admin/audit", a.headers)["data"]
    assert [t["id"] for t in listed] == [a.tenant_id]
    assert listed[0]["users"] == len(users)
    assert {u["tenant_id"] for u in users} == {a.tenant_id}
    assert {a.id, tenants.member_a.id} <= {u["id"] for u in users}
    assert audit
    assert {e["tenant_id"] for e in audit} == {a.tenant_id}
    for path in ("/api/admin/users", "/api/admin/audit", "/api/admin/sessions/live"):
        other = http.get(path, params={"tenant_id": tenants.admin_b.tenant_id}, headers=a.headers)
        assert other.status_code == 404, path


def test_another_tenants_user_is_not_found_for_get_patch_and_delete(
    http: httpx.Client, tenants: Tenants, operator: dict[str, str]
) -> None:
    a, b = tenants.admin_a, tenants.admin_b
    path = f"/api/admin/users/{b.id}"
    for method, body in (("GET", None), ("PATCH", {"disabled": True}), ("DELETE", None)):
        response = call(http, method, path, body, a.headers)
        assert response.status_code == 404, (method, response.text)
        assert response.json()["error"]["code"] == "not_found"
    untouched = get(http, path, operator)
    assert untouched["disabled"] is False
    assert get(http, "/api/users/me", b.headers)["id"] == b.id


def test_the_operator_sees_every_tenant(
    http: httpx.Client, tenants: Tenants, operator: dict[str, str]
) -> None:
    listed = {t["id"] for t in get(http, "/api/admin/tenants", operator)["data"]}
    users = {u["id"] for u in get(http, "/api/admin/users?limit=200", operator)["data"]}
    audit_tenants = {e["tenant_id"] for e in get(http, "/api/admin/audit", operator)["data"]}
    assert {tenants.admin_a.tenant_id, tenants.admin_b.tenant_id} <= listed
    assert {tenants.admin_a.id, tenants.member_a.id, tenants.admin_b.id} <= users
    assert {tenants.admin_a.tenant_id, tenants.admin_b.tenant_id} <= audit_tenants
    only_b = get(http, f"/api/admin/users?tenant_id={tenants.admin_b.tenant_id}", operator)
    assert [u["id"] for u in only_b["data"]] == [tenants.admin_b.id]
    assert get(http, f"/api/admin/users/{tenants.admin_b.id}", operator)["email"] == (
        tenants.admin_b.email
    )


def test_lists_page_with_limit_and_offset(http: httpx.Client, operator: dict[str, str]) -> None:
    first = get(http, "/api/admin/tenants?limit=1", operator)
    second = get(http, "/api/admin/tenants?limit=1&offset=1", operator)
    assert len(first["data"]) == 1
    assert first["has_more"] is True
    assert second["data"][0]["id"] != first["data"][0]["id"]
    assert http.get("/api/admin/users?limit=0", headers=operator).status_code == 400


# --- creating and changing users ------------------------------------------------------------


def test_an_admin_creates_users_in_its_own_tenant_with_a_checked_password(
    http: httpx.Client, tenants: Tenants
) -> None:
    a = tenants.admin_a
    email = new_email()
    weak = http.post(
        "/api/admin/users", headers=a.headers, json={"email": email, "password": "password"}
    )
    created = http.post(
        "/api/admin/users",
        headers=a.headers,
        json={"email": email, "password": new_password(), "role": "admin"},
    )
    again = http.post(
        "/api/admin/users", headers=a.headers, json={"email": email, "password": new_password()}
    )
    assert weak.status_code == 400
    assert weak.json()["error"]["code"] == "weak_password"
    assert created.status_code == 201, created.text
    assert created.json()["tenant_id"] == a.tenant_id
    assert created.json()["role"] == "admin"
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"
    delete = http.delete(f"/api/admin/users/{created.json()['id']}", headers=a.headers)
    assert delete.status_code == 204


def test_the_last_admin_cannot_be_demoted_disabled_or_deleted(
    http: httpx.Client, operator: dict[str, str]
) -> None:
    c = register(http, "Tenant C")
    me = f"/api/admin/users/{c.id}"

    def code(response: httpx.Response) -> str:
        assert response.status_code == 409, response.text
        result: str = response.json()["error"]["code"]
        return result

    assert code(http.patch(me, headers=c.headers, json={"role": "member"})) == "last_admin"
    assert code(http.patch(me, headers=c.headers, json={"disabled": True})) == "self_action"
    assert code(http.delete(me, headers=c.headers)) == "self_action"
    assert code(http.patch(me, headers=operator, json={"role": "member"})) == "last_admin"
    assert code(http.patch(me, headers=operator, json={"disabled": True})) == "last_admin"
    assert code(http.delete(me, headers=operator)) == "last_admin"

    second = add_user(http, c, role="admin")
    other = f"/api/admin/users/{second.id}"
    assert http.patch(other, headers=c.headers, json={"disabled": True}).status_code == 200
    # A disabled admin does not count: c is the last enabled one again.
    assert code(http.patch(me, headers=c.headers, json={"role": "member"})) == "last_admin"
    assert http.patch(other, headers=c.headers, json={"disabled": False}).status_code == 200
    # Disabling ended the second admin's sign-ins; enabling does not bring them back.
    assert http.get("/api/users/me", headers=second.headers).status_code == 401
    second = login(http, second.email, second.password)
    assert http.patch(me, headers=c.headers, json={"role": "member"}).status_code == 200
    # Demoted: the former admin's own token has lost the admin routes at once.
    assert http.get("/api/admin/users", headers=c.headers).status_code == 403
    assert code(http.patch(other, headers=second.headers, json={"role": "member"})) == (
        "last_admin"
    )
    assert get(http, "/api/admin/tenants", second.headers)["data"][0]["id"] == c.tenant_id


async def until_closed(conn: Any) -> list[str]:
    """Event types (error codes for errors) until the server closes the socket."""
    seen: list[str] = []
    try:
        while True:  # the server re-checks sign-ins every second here
            event = await asyncio.wait_for(conn.recv(), 20)
            error = getattr(event, "error", None)
            seen.append(error.code if error is not None else event.type)
    except ConnectionClosed:
        return seen


async def test_disabling_a_user_ends_their_tokens_and_live_socket(
    admin_server: LiveServer, http: httpx.Client, tenants: Tenants
) -> None:
    admin = tenants.admin_a
    user = add_user(http, admin)
    path = f"/api/admin/users/{user.id}"
    credentials = {"email": user.email, "password": user.password}
    async with httpx.AsyncClient(base_url=admin_server.base_url) as api:
        async with realtime(admin_server, user.access_token) as conn:
            assert (await conn.recv()).type == "session.created"
            disabled = await api.patch(path, headers=admin.headers, json={"disabled": True})
            events = await until_closed(conn)
        me = await api.get("/api/users/me", headers=user.headers)
        refresh = await api.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
        login_disabled = await api.post("/api/auth/login", json=credentials)
        enabled = await api.patch(path, headers=admin.headers, json={"disabled": False})
        login_enabled = await api.post("/api/auth/login", json=credentials)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled"] is True
    assert "session_revoked" in events
    assert me.status_code == 401
    assert refresh.status_code == 401
    assert login_disabled.status_code == 401
    assert enabled.status_code == 200
    assert login_enabled.status_code == 200


def test_deleting_a_user_ends_their_access(http: httpx.Client, tenants: Tenants) -> None:
    admin = tenants.admin_a
    user = add_user(http, admin)
    assert http.delete(f"/api/admin/users/{user.id}", headers=admin.headers).status_code == 204
    assert http.get("/api/users/me", headers=user.headers).status_code == 401
    assert http.get(f"/api/admin/users/{user.id}", headers=admin.headers).status_code == 404


def test_admin_actions_are_audited_without_secrets(http: httpx.Client, tenants: Tenants) -> None:
    admin = tenants.admin_a
    user = add_user(http, admin)
    path = f"/api/admin/users/{user.id}"
    assert http.patch(path, headers=admin.headers, json={"role": "admin"}).status_code == 200
    assert http.delete(path, headers=admin.headers).status_code == 204
    events = get(http, "/api/admin/audit?limit=200", admin.headers)["data"]
    mine = [e for e in events if e["detail"].get("target_user_id") == user.id]
    assert [e["action"] for e in mine] == [
        "admin.user_delete",
        "admin.user_update",
        "admin.user_create",
    ]
    assert {e["user_id"] for e in mine} == {admin.id}
    assert {e["outcome"] for e in mine} == {"success"}
    assert mine[1]["detail"]["fields"] == ["role"]
    assert user.password not in str(events)


# --- live sessions --------------------------------------------------------------------------


async def test_live_sessions_show_while_open_to_their_tenant_and_the_operator(
    admin_server: LiveServer, tenants: Tenants, operator: dict[str, str]
) -> None:
    a, b = tenants.admin_a, tenants.admin_b
    async with httpx.AsyncClient(base_url=admin_server.base_url) as http:
        async with realtime(admin_server, a.access_token) as conn_a:
            assert (await conn_a.recv()).type == "session.created"
            async with realtime(admin_server, b.access_token) as conn_b:
                assert (await conn_b.recv()).type == "session.created"
                seen_by_a = (await http.get("/api/admin/sessions/live", headers=a.headers)).json()
                seen_by_operator = await session_ids(http, operator, a.id)
                seen_by_operator += await session_ids(http, operator, b.id)
        deadline = time.monotonic() + 20
        while await session_ids(http, operator, a.id) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        after = await session_ids(http, operator, a.id)
    assert [s["user_id"] for s in seen_by_a] == [a.id]
    session = seen_by_a[0]
    assert session["tenant_id"] == a.tenant_id
    assert session["agent"] == "default"
    assert session["agent_name"] == "default"
    assert session["state"] == "listening"
    assert session["turns"] == 0
    assert session["duration_s"] >= 0
    assert set(session) == {
        "session_id",
        "tenant_id",
        "user_id",
        "agent",
        "agent_name",
        "client",
        "state",
        "started_at",
        "duration_s",
        "turns",
        "last_turn_ms",
        "worker",
    }
    assert {s["tenant_id"] for s in seen_by_operator} == {a.tenant_id, b.tenant_id}
    assert after == []


# --- health views ---------------------------------------------------------------------------


def test_metrics_show_an_operator_every_stage_and_the_process_counters(
    http: httpx.Client, operator: dict[str, str]
) -> None:
    metrics = get(http, "/api/admin/metrics", operator)
    assert [s["stage"] for s in metrics["stages"]] == [
        "end_of_turn",
        "stt",
        "brain",
        "tts",
        "end_of_speech_to_first_audio",
    ]
    for stage in metrics["stages"]:
        if stage["count"] == 0:
            assert stage["p50_ms"] is None
        else:
            assert 0 <= stage["p50_ms"] <= stage["p95_ms"]
    assert set(metrics["audio_frames"]["dropped"]) >= {
        "invalid_audio",
        "buffer_full",
        "client_gone",
    }
    assert metrics["active_sessions"] >= 0
    assert metrics["event_loop"]["samples"] >= 0


def test_providers_show_the_default_agents_stages(http: httpx.Client, tenants: Tenants) -> None:
    providers = get(http, "/api/admin/providers", tenants.admin_a.headers)
    stages = {s["stage"]: s for s in providers["stages"]}
    assert set(stages) == {"vad", "stt", "tts", "llm"}
    for loaded in ("vad", "stt", "tts"):
        assert stages[loaded]["name"], loaded
    assert providers["chains"] == []  # one provider per stage: no breakers to show


def test_errors_show_log_warnings_to_operators_only_and_audit_failures_per_tenant(
    http: httpx.Client, tenants: Tenants, operator: dict[str, str]
) -> None:
    marker = f"admin test warning {time.monotonic_ns()} %s"
    logging.getLogger("voxdialog.tests.admin").warning(marker, "a secret argument")
    refused = http.post(
        "/api/auth/login", json={"email": tenants.member_a.email, "password": "wrong password"}
    )
    assert refused.status_code == 401
    seen_by_operator = get(http, "/api/admin/errors", operator)
    seen_by_a = get(http, "/api/admin/errors", tenants.admin_a.headers)
    seen_by_b = get(http, "/api/admin/errors", tenants.admin_b.headers)
    logged = [e for e in seen_by_operator if e["message"] == marker]
    assert len(logged) == 1
    assert logged[0]["source"] == "log"
    assert logged[0]["level"] == "WARNING"
    assert logged[0]["name"] == "voxdialog.tests.admin"
    assert "a secret argument" not in str(seen_by_operator)
    assert all(e["source"] == "audit" for e in seen_by_a + seen_by_b)
    failed_logins = [
        e for e in seen_by_a if e["name"] == "auth.login" and e["user_id"] == tenants.member_a.id
    ]
    assert failed_logins
    assert failed_logins[0]["tenant_id"] == tenants.admin_a.tenant_id
    assert not [e for e in seen_by_b if e["user_id"] == tenants.member_a.id]
    assert "wrong password" not in str(seen_by_a)


def test_the_admin_page_is_served(http: httpx.Client) -> None:
    page = http.get("/admin")
    script = http.get("/static/admin.js")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/admin.js">' in page.text
    assert 'id="login-form"' in page.text
    assert 'id="key-form"' in page.text
    assert script.status_code == 200
    assert "/api/admin/sessions/live" in script.text
