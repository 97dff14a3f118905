"""``/api/agents`` against a live server: CRUD, validation, tenancy, permissions, paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.integration.agents.conftest import (
    CLOUD_TTS,
    PERSONA_LLM,
    bearer,
    email,
    new_agent,
    password,
    register,
)
from voxdialog.brain.tool_specs import SPECS
from voxdialog.testing.server import BackgroundServer

pytestmark = pytest.mark.models

ALL_TOOLS = [spec.name for spec in SPECS]


@pytest.fixture
async def http(server: BackgroundServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


async def add_member(http: httpx.AsyncClient, admin_token: str) -> str:
    """A member of the admin's tenant, signed in; returns its access token."""
    mail, secret = email(), password()
    created = await http.post(
        "/api/admin/users",
        json={"email": mail, "password": secret, "role": "member"},
        headers=bearer(admin_token),
    )
    assert created.status_code == 201, created.text
    login = await http.post("/api/auth/login", json={"email": mail, "password": secret})
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_an_agent_goes_through_create_read_list_update_and_delete(
    http: httpx.AsyncClient,
) -> None:
    owner = await register(http)
    token = owner["access_token"]
    body = {
        "name": "Captain Vox",
        "description": "Talks like a pirate.",
        "system_prompt": "You are Captain Vox. Answer like a pirate.",
        "llm": [PERSONA_LLM],
        "stt": ["whisper"],
        "tts": [CLOUD_TTS, "piper"],
        "voice": {"voice": "onyx", "rate": 1.25, "pitch": -2, "volume": 0.8},
        "greeting": "Ahoy! What be yer question?",
        "turn_detection": {"silence_duration_ms": 900, "threshold": 0.6},
        "tools": ["create_task", "list_tasks"],
    }
    created = await http.post("/api/agents", json=body, headers=bearer(token))
    assert created.status_code == 201, created.text
    agent = created.json()
    assert agent["object"] == "agent"
    assert agent["created_by"] == owner["user"]["id"]
    for key in ("name", "description", "system_prompt", "llm", "stt", "tts", "greeting", "tools"):
        assert agent[key] == body[key]
    assert agent["voice"] == {"voice": "onyx", "rate": 1.25, "pitch": -2.0, "volume": 0.8}
    assert agent["turn_detection"]["silence_duration_ms"] == 900
    assert agent["turn_detection"]["threshold"] == 0.6
    assert agent["turn_detection"]["prefix_padding_ms"] is None

    by_id = await http.get(f"/api/agents/{agent['id']}", headers=bearer(token))
    by_name = await http.get("/api/agents/captain VOX", headers=bearer(token))
    assert by_id.json() == agent
    assert by_name.json() == agent
    listed = await http.get("/api/agents", headers=bearer(token))
    assert [a["id"] for a in listed.json()["data"]] == [agent["id"]]
    assert listed.json()["has_more"] is False

    patched = await http.patch(
        f"/api/agents/{agent['id']}",
        json={"name": "Captain Quiet", "system_prompt": None, "voice": {"rate": 0.9}},
        headers=bearer(token),
    )
    assert patched.status_code == 200, patched.text
    changed = patched.json()
    assert changed["name"] == "Captain Quiet"
    assert changed["system_prompt"] is None
    assert changed["voice"] == {"voice": None, "rate": 0.9, "pitch": 0.0, "volume": 1.0}
    assert changed["llm"] == [PERSONA_LLM]  # what was not sent stays
    assert changed["greeting"] == body["greeting"]
    assert changed["updated_at"] >= agent["updated_at"]
    reread = await http.get(f"/api/agents/{agent['id']}", headers=bearer(token))
    assert reread.json() == changed

    deleted = await http.delete(f"/api/agents/{agent['id']}", headers=bearer(token))
    assert deleted.status_code == 204
    gone = await http.get(f"/api/agents/{agent['id']}", headers=bearer(token))
    assert gone.status_code == 404
    assert error_of(gone)["code"] == "not_found"
    again = await http.delete(f"/api/agents/{agent['id']}", headers=bearer(token))
    assert again.status_code == 404


async def test_a_minimal_agent_gets_the_server_defaults(http: httpx.AsyncClient) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token, name="  Plain  ")
    assert agent["name"] == "Plain"
    assert agent["llm"] == agent["stt"] == agent["tts"] == []
    assert agent["system_prompt"] is None
    assert agent["greeting"] is None
    assert agent["tools"] == ALL_TOOLS
    assert agent["voice"] == {"voice": None, "rate": 1.0, "pitch": 0.0, "volume": 1.0}
    assert set(agent["turn_detection"].values()) == {None}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"llm": ["no-such-llm"]}, "llm"),
        ({"llm": [CLOUD_TTS]}, "llm"),  # a TTS provider is no LLM
        ({"stt": [PERSONA_LLM]}, "stt"),
        ({"tts": ["whisper"]}, "tts"),
        ({"llm": [PERSONA_LLM, PERSONA_LLM]}, "llm"),
        ({"tts": ["piper"] * 6}, "tts"),
        ({"turn_detection": {"silence_duration_ms": 50}}, "turn_detection.silence_duration_ms"),
        ({"turn_detection": {"threshold": 1.5}}, "turn_detection.threshold"),
        ({"turn_detection": {"eagerness": "high"}}, "turn_detection.eagerness"),
        ({"voice": {"rate": 3.0}}, "voice.rate"),
        ({"voice": {"pitch": 13}}, "voice.pitch"),
        ({"voice": {"volume": -0.1}}, "voice.volume"),
        ({"voice": {"voice": "v" * 65}}, "voice.voice"),
        ({"tools": ["launch_rockets"]}, "tools"),
        ({"system_prompt": "x" * 20_001}, "system_prompt"),
        ({"greeting": "x" * 1_001}, "greeting"),
        ({"colour": "blue"}, "colour"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Default"}, "name"),
    ],
)
async def test_invalid_agents_are_refused_with_the_offending_parameter(
    http: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    token = (await register(http))["access_token"]
    created = await http.post(
        "/api/agents", json={"name": "Checked", **body}, headers=bearer(token)
    )
    assert created.status_code == 400, created.text
    assert error_of(created)["param"] == param
    assert error_of(created)["code"] == "invalid_value"
    # The same checks apply to a change, and a refused change leaves the agent as it was.
    agent = await new_agent(http, token)
    patched = await http.patch(
        f"/api/agents/{agent['id']}", json={"name": "Checked", **body}, headers=bearer(token)
    )
    assert patched.status_code == 400, patched.text
    assert error_of(patched)["param"] == param
    assert (await http.get(f"/api/agents/{agent['id']}", headers=bearer(token))).json() == agent
    listed = await http.get("/api/agents", headers=bearer(token))
    assert [a["id"] for a in listed.json()["data"]] == [agent["id"]]


async def test_null_is_refused_for_fields_that_cannot_be_empty(http: httpx.AsyncClient) -> None:
    token = (await register(http))["access_token"]
    agent = await new_agent(http, token)
    for field in ("name", "llm", "tools"):
        patched = await http.patch(
            f"/api/agents/{agent['id']}", json={field: None}, headers=bearer(token)
        )
        assert patched.status_code == 400, field
        assert error_of(patched)["param"] == field


async def test_names_are_unique_in_a_tenant_regardless_of_case(http: httpx.AsyncClient) -> None:
    first, second = (await register(http))["access_token"], (await register(http))["access_token"]
    await new_agent(http, first, name="Helper")
    other = await new_agent(http, first, name="Other")
    taken = await http.post("/api/agents", json={"name": "hELPER"}, headers=bearer(first))
    assert taken.status_code == 409
    assert error_of(taken)["code"] == "name_taken"
    renamed = await http.patch(
        f"/api/agents/{other['id']}", json={"name": "HELPER"}, headers=bearer(first)
    )
    assert renamed.status_code == 409
    # Another tenant has names of its own.
    await new_agent(http, second, name="Helper")


async def test_another_tenant_cannot_see_or_touch_an_agent(http: httpx.AsyncClient) -> None:
    alice, bob = (await register(http))["access_token"], (await register(http))["access_token"]
    agent = await new_agent(http, alice, name="Alice's agent")
    await new_agent(http, bob, name="Bob's agent")
    for response in (
        await http.get(f"/api/agents/{agent['id']}", headers=bearer(bob)),
        await http.get("/api/agents/Alice's agent", headers=bearer(bob)),
        await http.patch(f"/api/agents/{agent['id']}", json={"name": "x"}, headers=bearer(bob)),
        await http.delete(f"/api/agents/{agent['id']}", headers=bearer(bob)),
    ):
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
    listed = (await http.get("/api/agents", headers=bearer(bob))).json()
    assert [a["name"] for a in listed["data"]] == ["Bob's agent"]
    paged = await http.get("/api/agents", params={"after": agent["id"]}, headers=bearer(bob))
    assert paged.status_code == 400
    # Alice's agent is untouched.
    assert (await http.get(f"/api/agents/{agent['id']}", headers=bearer(alice))).json() == agent


async def test_members_share_agents_but_change_only_their_own(http: httpx.AsyncClient) -> None:
    admin = (await register(http))["access_token"]
    member = await add_member(http, admin)
    admins = await new_agent(http, admin, name="Admin's agent")
    seen = await http.get(f"/api/agents/{admins['id']}", headers=bearer(member))
    assert seen.status_code == 200
    listed = await http.get("/api/agents", headers=bearer(member))
    assert [a["id"] for a in listed.json()["data"]] == [admins["id"]]
    for refused in (
        await http.patch(
            f"/api/agents/{admins['id']}", json={"greeting": "hi"}, headers=bearer(member)
        ),
        await http.delete(f"/api/agents/{admins['id']}", headers=bearer(member)),
    ):
        assert refused.status_code == 403
        assert error_of(refused)["code"] == "forbidden"
    assert (await http.get(f"/api/agents/{admins['id']}", headers=bearer(admin))).json() == admins

    own = await new_agent(http, member, name="Member's agent")
    mine = await http.patch(
        f"/api/agents/{own['id']}", json={"greeting": "Hi."}, headers=bearer(member)
    )
    assert mine.status_code == 200
    # A tenant admin may change and delete anyone's agent.
    by_admin = await http.patch(
        f"/api/agents/{own['id']}", json={"greeting": "Hello."}, headers=bearer(admin)
    )
    assert by_admin.json()["greeting"] == "Hello."
    assert (await http.delete(f"/api/agents/{own['id']}", headers=bearer(admin))).status_code == 204


async def test_the_list_pages_by_cursor_and_by_offset(http: httpx.AsyncClient) -> None:
    token = (await register(http))["access_token"]
    ids = [(await new_agent(http, token, name=f"Agent {n}"))["id"] for n in range(3)]

    async def page(**params: Any) -> dict[str, Any]:
        response = await http.get("/api/agents", params=params, headers=bearer(token))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    first = await page(limit=2)
    assert [a["id"] for a in first["data"]] == ids[:2]
    assert first["has_more"] is True
    rest = await page(limit=2, after=ids[1])
    assert [a["id"] for a in rest["data"]] == ids[2:]
    assert rest["has_more"] is False
    middle = await page(limit=1, offset=1)
    assert [a["id"] for a in middle["data"]] == [ids[1]]
    assert (await page())["data"] == (await page(limit=100))["data"]
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"after": "nope"}):
        refused = await http.get("/api/agents", params=bad, headers=bearer(token))
        assert refused.status_code == 400, bad
        assert error_of(refused)["param"] == next(iter(bad))


async def test_agents_need_a_signed_in_caller(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/agents")).status_code == 401
    assert (await http.post("/api/agents", json={"name": "x"})).status_code == 401
