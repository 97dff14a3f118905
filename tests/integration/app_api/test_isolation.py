"""Tasks, projects and conversations are personal: another user sees none and touches none.

Two users in two tenants each get 50 tasks and 50 projects (through the API) and one voice
conversation that adds a task by voice. Every list shows only the caller's rows; every
object route answers another user 404 and leaves the object as it was.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.app_api.conftest import (
    bearer,
    created,
    error_of,
    read_all,
    register,
    typed_conversation,
)
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.models

SEEDED = 50


@dataclass(frozen=True, slots=True)
class Household:
    """A user in a tenant of its own, with what was made for it."""

    token: str
    task_ids: frozenset[str]
    project_ids: frozenset[str]
    conversation_id: str


async def _seed(server: LiveServer, http: httpx.AsyncClient, label: str) -> Household:
    token = await register(http)
    projects = [
        await created(http, token, "/api/projects", {"name": f"{label} project {n}"})
        for n in range(SEEDED)
    ]
    tasks = [
        await created(
            http,
            token,
            "/api/tasks",
            {"title": f"{label} task {n}", "project_id": projects[n % 5]["id"], "priority": "low"},
        )
        for n in range(SEEDED - 1)
    ]
    conversation_id = await typed_conversation(server, token, f"Add a task to call {label}")
    everything = await read_all(http, token, "/api/tasks", limit=100)
    by_voice = [task for task in everything if task["id"] not in {t["id"] for t in tasks}]
    assert [task["title"].lower() for task in by_voice] == [f"call {label}"]
    return Household(
        token=token,
        task_ids=frozenset(task["id"] for task in everything),
        project_ids=frozenset(project["id"] for project in projects),
        conversation_id=conversation_id,
    )


@pytest.fixture(scope="module")
def households(live_server: LiveServer) -> tuple[Household, Household]:
    """Two seeded users (made once for the module: 200 objects take a while)."""

    async def seed_both() -> tuple[Household, Household]:
        async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
            return await _seed(live_server, http, "alice"), await _seed(live_server, http, "bob")

    return asyncio.run(seed_both())


async def _everything(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """All the caller's objects as the API shows them."""
    return {
        path: await read_all(http, token, path, limit=100)
        for path in ("/api/tasks", "/api/projects", "/api/conversations", "/api/voice-sessions")
    }


async def test_every_list_shows_only_the_callers_own_rows(
    http: httpx.AsyncClient, households: tuple[Household, Household]
) -> None:
    for me, other in (households, households[::-1]):
        seen = await _everything(http, me.token)
        tasks = {task["id"] for task in seen["/api/tasks"]}
        projects = {project["id"] for project in seen["/api/projects"]}
        assert tasks == me.task_ids
        assert len(tasks) == SEEDED
        assert projects == me.project_ids
        assert len(projects) == SEEDED
        assert not tasks & other.task_ids
        assert not projects & other.project_ids
        for path in ("/api/conversations", "/api/voice-sessions"):
            assert [c["id"] for c in seen[path]] == [me.conversation_id], path


async def test_filtering_by_another_users_project_finds_nothing(
    http: httpx.AsyncClient, households: tuple[Household, Household]
) -> None:
    alice, bob = households
    for project_id in sorted(alice.project_ids)[:5]:
        response = await http.get(
            "/api/tasks", params={"project_id": project_id}, headers=bearer(bob.token)
        )
        assert response.json() == {"data": [], "has_more": False}


async def test_another_users_project_cannot_hold_my_task(
    http: httpx.AsyncClient, households: tuple[Household, Household]
) -> None:
    alice, bob = households
    foreign = min(alice.project_ids)
    url = f"/api/projects/{foreign}"
    before = (await http.get(url, headers=bearer(alice.token))).json()
    refused = await http.post(
        "/api/tasks", json={"title": "Sneak in", "project_id": foreign}, headers=bearer(bob.token)
    )
    assert refused.status_code == 400
    assert error_of(refused)["param"] == "project_id"
    mine = min(bob.task_ids)
    moved = await http.patch(
        f"/api/tasks/{mine}", json={"project_id": foreign}, headers=bearer(bob.token)
    )
    assert moved.status_code == 400
    assert error_of(moved)["param"] == "project_id"
    assert (await http.get(url, headers=bearer(alice.token))).json() == before


def _object_requests(victim: Household) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every object route on every one of ``victim``'s objects, with a harmless body."""
    requests: list[tuple[str, str, dict[str, Any] | None]] = []
    for task_id in sorted(victim.task_ids):
        url = f"/api/tasks/{task_id}"
        requests += [("GET", url, None), ("PATCH", url, {"done": True}), ("DELETE", url, None)]
    for project_id in sorted(victim.project_ids):
        url = f"/api/projects/{project_id}"
        requests += [("GET", url, None), ("PATCH", url, {"name": "Mine now"})]
        requests.append(("DELETE", url, None))
    conversation = victim.conversation_id
    requests += [
        ("GET", f"/api/conversations/{conversation}", None),
        ("GET", f"/api/conversations/{conversation}/export", None),
        ("DELETE", f"/api/conversations/{conversation}", None),
        ("GET", f"/api/voice-sessions/{conversation}", None),
        ("GET", f"/api/voice-sessions/{conversation}/commands", None),
    ]
    return requests


async def test_another_user_gets_404_on_every_object_and_changes_nothing(
    http: httpx.AsyncClient, households: tuple[Household, Household]
) -> None:
    for victim, intruder in (households, households[::-1]):
        before = await _everything(http, victim.token)
        conversation = await http.get(
            f"/api/conversations/{victim.conversation_id}", headers=bearer(victim.token)
        )
        for method, url, body in _object_requests(victim):
            response = await http.request(method, url, json=body, headers=bearer(intruder.token))
            assert response.status_code == 404, (method, url, response.text)
            assert error_of(response)["code"] == "not_found"
            assert victim.conversation_id not in response.text
        assert await _everything(http, victim.token) == before
        again = await http.get(
            f"/api/conversations/{victim.conversation_id}", headers=bearer(victim.token)
        )
        assert again.json() == conversation.json()


async def test_without_a_token_every_object_route_is_a_401(
    http: httpx.AsyncClient, households: tuple[Household, Household]
) -> None:
    for method, url, body in _object_requests(households[0]):
        response = await http.request(method, url, json=body)
        assert response.status_code == 401, (method, url, response.text)
        assert error_of(response)["code"] == "invalid_api_key"


async def test_a_colleague_in_the_same_tenant_sees_nothing_either(
    http: httpx.AsyncClient, households: tuple[Household, Household]
) -> None:
    admin = households[0]
    email, secret = (
        f"colleague-{uuid.uuid4().hex[:12]}@example.com",
        f"correct horse {uuid.uuid4()}",
    )
    added = await http.post(
        "/api/admin/users",
        json={"email": email, "password": secret, "role": "member"},
        headers=bearer(admin.token),
    )
    assert added.status_code == 201, added.text
    login = await http.post("/api/auth/login", json={"email": email, "password": secret})
    colleague = login.json()["access_token"]
    seen = await _everything(http, colleague)
    assert all(items == [] for items in seen.values())
    before = await _everything(http, admin.token)
    for method, url, body in _object_requests(admin):
        response = await http.request(method, url, json=body, headers=bearer(colleague))
        assert response.status_code == 404, (method, url, response.text)
    assert await _everything(http, admin.token) == before
