"""``/api/tasks`` and ``/api/projects`` against a live server: CRUD, validation, paging."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from tests.integration.app_api.conftest import bearer, created, error_of, read_all, register

pytestmark = pytest.mark.models


async def test_a_task_goes_through_create_read_list_update_and_delete(
    http: httpx.AsyncClient,
) -> None:
    token = await register(http)
    project = await created(http, token, "/api/projects", {"name": "Garden"})
    task = await created(
        http,
        token,
        "/api/tasks",
        {
            "title": "  Water the plants  ",
            "due_date": "2026-11-30",
            "due_time": "14:30:00",
            "priority": "high",
            "project_id": project["id"],
        },
    )
    assert task["object"] == "task"
    assert task["title"] == "Water the plants"
    assert task["due_date"] == "2026-11-30"
    assert task["due_time"] == "14:30:00"
    assert task["priority"] == "high"
    assert (task["project_id"], task["project_name"]) == (project["id"], "Garden")
    assert task["done"] is False
    assert task["completed_at"] is None
    assert dt.datetime.fromisoformat(task["created_at"]).tzinfo is not None

    read = await http.get(f"/api/tasks/{task['id']}", headers=bearer(token))
    assert read.status_code == 200
    assert read.json() == task
    listed = await http.get("/api/tasks", headers=bearer(token))
    assert listed.json() == {"data": [task], "has_more": False}

    patched = await http.patch(
        f"/api/tasks/{task['id']}",
        json={"title": "Water the roses", "due_time": None, "priority": "low"},
        headers=bearer(token),
    )
    assert patched.status_code == 200, patched.text
    changed = patched.json()
    assert changed["title"] == "Water the roses"
    assert changed["due_time"] is None
    assert changed["priority"] == "low"
    assert changed["due_date"] == "2026-11-30"  # not sent: unchanged
    assert changed["project_id"] == project["id"]
    assert changed["updated_at"] >= task["updated_at"]
    assert (await http.get(f"/api/tasks/{task['id']}", headers=bearer(token))).json() == changed

    deleted = await http.delete(f"/api/tasks/{task['id']}", headers=bearer(token))
    assert deleted.status_code == 204
    gone = await http.get(f"/api/tasks/{task['id']}", headers=bearer(token))
    assert gone.status_code == 404
    assert error_of(gone)["code"] == "not_found"
    again = await http.delete(f"/api/tasks/{task['id']}", headers=bearer(token))
    assert again.status_code == 404


async def test_completing_sets_completed_at_and_reopening_clears_it(
    http: httpx.AsyncClient,
) -> None:
    token = await register(http)
    task = await created(http, token, "/api/tasks", {"title": "Pay the rent"})
    url = f"/api/tasks/{task['id']}"

    done = (await http.patch(url, json={"done": True}, headers=bearer(token))).json()
    assert done["done"] is True
    completed_at = done["completed_at"]
    assert completed_at is not None
    assert completed_at >= task["created_at"]
    again = (await http.patch(url, json={"done": True}, headers=bearer(token))).json()
    assert again["completed_at"] == completed_at  # the first completion counts

    open_tasks = await http.get("/api/tasks", params={"done": "false"}, headers=bearer(token))
    done_tasks = await http.get("/api/tasks", params={"done": "true"}, headers=bearer(token))
    assert open_tasks.json()["data"] == []
    assert [t["id"] for t in done_tasks.json()["data"]] == [task["id"]]

    reopened = (await http.patch(url, json={"done": False}, headers=bearer(token))).json()
    assert reopened["done"] is False
    assert reopened["completed_at"] is None


async def test_a_minimal_task_has_no_optional_fields(http: httpx.AsyncClient) -> None:
    token = await register(http)
    task = await created(http, token, "/api/tasks", {"title": "Call mum"})
    for key in ("due_date", "due_time", "priority", "project_id", "project_name"):
        assert task[key] is None, key


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "\x00"}, "title"),
        ({"title": "Milk", "due_date": 20261130}, "due_date"),
        ({"title": "Milk", "due_time": 3600}, "due_time"),
        ({"title": "x" * 501}, "title"),
        ({"title": "Milk", "priority": "urgent"}, "priority"),
        ({"title": "Milk", "due_date": "2026-02-30"}, "due_date"),
        ({"title": "Milk", "due_date": "next friday"}, "due_date"),
        ({"title": "Milk", "due_time": "25:00"}, "due_time"),
        ({"title": "Milk", "due_time": "14:30:00+02:00"}, "due_time"),
        ({"title": "Milk", "colour": "red"}, "colour"),
        ({"title": "Milk", "project_id": "nope"}, "project_id"),
        ({"title": "Milk", "project_id": "a/b"}, "project_id"),
    ],
)
async def test_an_invalid_task_is_refused_with_the_field_named(
    http: httpx.AsyncClient, body: dict[str, object], param: str
) -> None:
    token = await register(http)
    response = await http.post("/api/tasks", json=body, headers=bearer(token))
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == param
    assert error_of(response)["type"] == "invalid_request_error"
    listed = await http.get("/api/tasks", headers=bearer(token))
    assert listed.json()["data"] == []


async def test_a_lone_surrogate_is_refused_not_stored(http: httpx.AsyncClient) -> None:
    token = await register(http)
    response = await http.post(
        "/api/tasks",
        content=b'{"title": "Milk \\ud800"}',
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == "title"


async def test_a_title_of_500_characters_is_the_longest_allowed(http: httpx.AsyncClient) -> None:
    token = await register(http)
    task = await created(http, token, "/api/tasks", {"title": "y" * 500})
    assert len(task["title"]) == 500


@pytest.mark.parametrize(
    "body",
    [
        {"title": None},
        {"done": None},
        {"done": 1},
        {"done": "yes"},
        {"title": ""},
        {"priority": "someday"},
        {"due_date": "yesterday"},
        {"unknown": 1},
    ],
)
async def test_an_invalid_change_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, body: dict[str, object]
) -> None:
    token = await register(http)
    task = await created(http, token, "/api/tasks", {"title": "Fix the bike", "priority": "low"})
    response = await http.patch(f"/api/tasks/{task['id']}", json=body, headers=bearer(token))
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == next(iter(body))
    unchanged = await http.get(f"/api/tasks/{task['id']}", headers=bearer(token))
    assert unchanged.json() == task


async def test_an_empty_change_keeps_the_task(http: httpx.AsyncClient) -> None:
    token = await register(http)
    task = await created(http, token, "/api/tasks", {"title": "Fix the bike"})
    response = await http.patch(f"/api/tasks/{task['id']}", json={}, headers=bearer(token))
    assert response.status_code == 200
    assert {k: v for k, v in response.json().items() if k != "updated_at"} == {
        k: v for k, v in task.items() if k != "updated_at"
    }


async def test_an_unknown_project_is_a_400_on_project_id(http: httpx.AsyncClient) -> None:
    token = await register(http)
    missing = "0" * 32
    response = await http.post(
        "/api/tasks", json={"title": "Milk", "project_id": missing}, headers=bearer(token)
    )
    assert response.status_code == 400
    assert error_of(response) | {"message": ""} == {
        "message": "",
        "type": "invalid_request_error",
        "param": "project_id",
        "code": "invalid_value",
    }
    task = await created(http, token, "/api/tasks", {"title": "Milk"})
    patched = await http.patch(
        f"/api/tasks/{task['id']}", json={"project_id": missing}, headers=bearer(token)
    )
    assert patched.status_code == 400
    assert error_of(patched)["param"] == "project_id"
    assert (await http.get(f"/api/tasks/{task['id']}", headers=bearer(token))).json() == task


async def test_a_task_moves_between_projects_and_out_of_them(http: httpx.AsyncClient) -> None:
    token = await register(http)
    home = await created(http, token, "/api/projects", {"name": "Home"})
    work = await created(http, token, "/api/projects", {"name": "Work"})
    task = await created(
        http, token, "/api/tasks", {"title": "Print tickets", "project_id": home["id"]}
    )
    url = f"/api/tasks/{task['id']}"
    moved = (await http.patch(url, json={"project_id": work["id"]}, headers=bearer(token))).json()
    assert (moved["project_id"], moved["project_name"]) == (work["id"], "Work")
    freed = (await http.patch(url, json={"project_id": None}, headers=bearer(token))).json()
    assert (freed["project_id"], freed["project_name"]) == (None, None)


async def test_tasks_filter_by_project_and_state(http: httpx.AsyncClient) -> None:
    token = await register(http)
    home = await created(http, token, "/api/projects", {"name": "Home"})
    in_home = await created(http, token, "/api/tasks", {"title": "Mop", "project_id": home["id"]})
    loose = await created(http, token, "/api/tasks", {"title": "Call Bob"})
    finished = await created(http, token, "/api/tasks", {"title": "Dust", "project_id": home["id"]})
    await http.patch(f"/api/tasks/{finished['id']}", json={"done": True}, headers=bearer(token))

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [task["id"] for task in response.json()["data"]]

    everything = await http.get("/api/tasks", headers=bearer(token))
    assert ids(everything) == [in_home["id"], loose["id"], finished["id"]]  # open ones first
    of_home = await http.get("/api/tasks", params={"project_id": home["id"]}, headers=bearer(token))
    assert ids(of_home) == [in_home["id"], finished["id"]]
    open_of_home = await http.get(
        "/api/tasks", params={"project_id": home["id"], "done": "false"}, headers=bearer(token)
    )
    assert ids(open_of_home) == [in_home["id"]]


async def test_paging_through_25_tasks_sees_each_once(http: httpx.AsyncClient) -> None:
    token = await register(http)
    made = [
        (await created(http, token, "/api/tasks", {"title": f"Task {n:02d}"}))["id"]
        for n in range(25)
    ]
    seen = await read_all(http, token, "/api/tasks", limit=7)
    assert [task["id"] for task in seen] == made  # creation order, no duplicates, no gaps
    first = (await http.get("/api/tasks", headers=bearer(token))).json()
    assert len(first["data"]) == 20  # the default page
    assert first["has_more"] is True
    last = await http.get("/api/tasks", params={"offset": 20, "limit": 5}, headers=bearer(token))
    assert last.json()["has_more"] is False
    past = await http.get("/api/tasks", params={"offset": 100_000}, headers=bearer(token))
    assert past.json() == {"data": [], "has_more": False}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/tasks", {"limit": 0}),
        ("/api/tasks", {"limit": 101}),
        ("/api/tasks", {"offset": -1}),
        ("/api/tasks", {"offset": 100_001}),
        ("/api/tasks", {"done": "maybe"}),
        ("/api/projects", {"limit": "ten"}),
        ("/api/conversations", {"limit": 1000}),
        ("/api/voice-sessions", {"status": "sleeping"}),
    ],
)
async def test_paging_parameters_out_of_range_are_refused(
    http: httpx.AsyncClient, path: str, params: dict[str, object]
) -> None:
    token = await register(http)
    response = await http.get(path, params=params, headers=bearer(token))
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == next(iter(params))


async def test_a_project_goes_through_create_read_list_rename_and_delete(
    http: httpx.AsyncClient,
) -> None:
    token = await register(http)
    project = await created(http, token, "/api/projects", {"name": "  Garden  "})
    assert project["object"] == "project"
    assert project["name"] == "Garden"
    assert (project["task_count"], project["open_task_count"]) == (0, 0)
    for title in ("Mow", "Weed", "Rake"):
        await created(http, token, "/api/tasks", {"title": title, "project_id": project["id"]})
    tasks = (await http.get("/api/tasks", headers=bearer(token))).json()["data"]
    await http.patch(f"/api/tasks/{tasks[0]['id']}", json={"done": True}, headers=bearer(token))

    read = await http.get(f"/api/projects/{project['id']}", headers=bearer(token))
    assert read.status_code == 200
    assert (read.json()["task_count"], read.json()["open_task_count"]) == (3, 2)
    listed = (await http.get("/api/projects", headers=bearer(token))).json()
    assert listed == {"data": [read.json()], "has_more": False}

    renamed = await http.patch(
        f"/api/projects/{project['id']}", json={"name": "Allotment"}, headers=bearer(token)
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Allotment"
    assert renamed.json()["open_task_count"] == 2
    retitled = (await http.get(f"/api/tasks/{tasks[1]['id']}", headers=bearer(token))).json()
    assert retitled["project_name"] == "Allotment"

    deleted = await http.delete(f"/api/projects/{project['id']}", headers=bearer(token))
    assert deleted.status_code == 204
    gone = await http.get(f"/api/projects/{project['id']}", headers=bearer(token))
    assert gone.status_code == 404
    assert error_of(gone)["code"] == "not_found"
    # ON DELETE SET NULL: the tasks stay, without a project.
    kept = (await http.get("/api/tasks", headers=bearer(token))).json()["data"]
    assert sorted(t["title"] for t in kept) == ["Mow", "Rake", "Weed"]
    assert {(t["project_id"], t["project_name"]) for t in kept} == {(None, None)}


async def test_project_names_are_unique_ignoring_case(http: httpx.AsyncClient) -> None:
    token = await register(http)
    garden = await created(http, token, "/api/projects", {"name": "Garden"})
    house = await created(http, token, "/api/projects", {"name": "House"})
    duplicate = await http.post("/api/projects", json={"name": "GARDEN"}, headers=bearer(token))
    assert duplicate.status_code == 409
    assert error_of(duplicate)["code"] == "conflict"
    assert error_of(duplicate)["param"] == "name"
    clash = await http.patch(
        f"/api/projects/{house['id']}", json={"name": "garden "}, headers=bearer(token)
    )
    assert clash.status_code == 409
    assert error_of(clash)["code"] == "conflict"
    recased = await http.patch(
        f"/api/projects/{garden['id']}", json={"name": "GARDEN"}, headers=bearer(token)
    )
    assert recased.status_code == 200
    assert recased.json()["name"] == "GARDEN"
    names = [
        p["name"] for p in (await http.get("/api/projects", headers=bearer(token))).json()["data"]
    ]
    assert names == ["GARDEN", "House"]


async def test_another_user_may_use_the_same_project_name(http: httpx.AsyncClient) -> None:
    first, second = await register(http), await register(http)
    await created(http, first, "/api/projects", {"name": "Garden"})
    await created(http, second, "/api/projects", {"name": "Garden"})


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "  "}, {"name": "x" * 201}, {"name": "Ok", "colour": "red"}],
)
async def test_an_invalid_project_is_refused(
    http: httpx.AsyncClient, body: dict[str, object]
) -> None:
    token = await register(http)
    response = await http.post("/api/projects", json=body, headers=bearer(token))
    assert response.status_code == 400, response.text
    assert (await http.get("/api/projects", headers=bearer(token))).json()["data"] == []


async def test_a_name_longer_than_its_column_once_folded_is_refused(
    http: httpx.AsyncClient,
) -> None:
    token = await register(http)
    response = await http.post("/api/projects", json={"name": "ß" * 150}, headers=bearer(token))
    assert response.status_code == 400
    assert error_of(response)["param"] == "name"


async def test_paging_through_projects_sees_each_once(http: httpx.AsyncClient) -> None:
    token = await register(http)
    names = [f"Project {n:02d}" for n in range(23)]
    for name in reversed(names):
        await created(http, token, "/api/projects", {"name": name})
    seen = await read_all(http, token, "/api/projects", limit=5)
    assert [p["name"] for p in seen] == names  # by name


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tasks/{id}"),
        ("PATCH", "/api/tasks/{id}"),
        ("DELETE", "/api/tasks/{id}"),
        ("GET", "/api/projects/{id}"),
        ("PATCH", "/api/projects/{id}"),
        ("DELETE", "/api/projects/{id}"),
        ("GET", "/api/conversations/{id}"),
        ("DELETE", "/api/conversations/{id}"),
        ("GET", "/api/conversations/{id}/export"),
        ("GET", "/api/voice-sessions/{id}"),
        ("GET", "/api/voice-sessions/{id}/commands"),
    ],
)
@pytest.mark.parametrize("bad_id", ["x" * 65, "%00", "no-such-id", "%E2%9C%93"])
async def test_an_unknown_or_malformed_id_is_a_404(
    http: httpx.AsyncClient, method: str, path: str, bad_id: str
) -> None:
    token = await register(http)
    body = {"name": "Renamed"} if "projects" in path else {}
    response = await http.request(
        method,
        path.format(id=bad_id),
        json=body if method == "PATCH" else None,
        headers=bearer(token),
    )
    assert response.status_code == 404, response.text
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tasks"),
        ("POST", "/api/tasks"),
        ("GET", "/api/tasks/abc"),
        ("PATCH", "/api/tasks/abc"),
        ("DELETE", "/api/tasks/abc"),
        ("GET", "/api/projects"),
        ("POST", "/api/projects"),
        ("GET", "/api/projects/abc"),
        ("PATCH", "/api/projects/abc"),
        ("DELETE", "/api/projects/abc"),
        ("GET", "/api/conversations"),
        ("GET", "/api/conversations/abc"),
        ("DELETE", "/api/conversations/abc"),
        ("GET", "/api/conversations/abc/export"),
        ("GET", "/api/voice-sessions"),
        ("GET", "/api/voice-sessions/abc"),
        ("GET", "/api/voice-sessions/abc/commands"),
    ],
)
@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_every_route_needs_a_signed_in_caller(
    http: httpx.AsyncClient, method: str, path: str, token: str | None
) -> None:
    headers = bearer(token) if token else {}
    field = "name" if "projects" in path else "title"
    body = {field: "x"} if method in ("POST", "PATCH") else None
    response = await http.request(method, path, json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert error_of(response)["code"] == "invalid_api_key"
    assert response.headers["www-authenticate"] == "Bearer"
