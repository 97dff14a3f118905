import datetime as dt
import json
from typing import Any

import pytest

from voxdialog.brain.tasks import NewTask, Priority
from voxdialog.brain.tool_specs import SPECS
from voxdialog.brain.tools import TaskTools, ToolResult
from voxdialog.security.principal import Scope
from voxdialog.testing.tasks import MemoryTaskStore

NOW = dt.datetime(2025, 6, 11, 9, 0)  # a Wednesday morning
ANN = Scope("acme", "ann")
BOB = Scope("acme", "bob")
TITLES = ["Water the plants", "Buy milk", "Pay the electricity bill", "Clean the garage"]


@pytest.fixture
def store() -> MemoryTaskStore:
    return MemoryTaskStore()


@pytest.fixture
async def seeded(store: MemoryTaskStore) -> MemoryTaskStore:
    for title in TITLES:
        await store.add_task(ANN, NewTask(title=title))
    return store


def tools_for(store: MemoryTaskStore, scope: Scope = ANN) -> TaskTools:
    return TaskTools(store, scope, clock=lambda: NOW)


async def call(tools: TaskTools, name: str, arguments: object) -> tuple[ToolResult, dict[str, Any]]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    result = await tools.call(name, raw)
    content = json.loads(result.content)
    assert content["ok"] is result.ok
    assert (result.error is None) is result.ok
    return result, content


async def titles(store: MemoryTaskStore, scope: Scope = ANN, *, done: bool = False) -> list[str]:
    return [t.title for t in await store.list_tasks(scope, include_done=True) if t.done == done]


def test_the_specs_are_json_schema_objects_for_every_task_and_project_tool(
    store: MemoryTaskStore,
) -> None:
    specs = tools_for(store).specs()
    assert specs == SPECS
    assert {s.name for s in specs} == {
        "create_task",
        "list_tasks",
        "complete_task",
        "delete_task",
        "rename_task",
        "search_tasks",
        "create_project",
        "list_projects",
    }
    for spec in specs:
        schema: Any = spec.parameters
        assert schema["type"] == "object"
        properties = schema["properties"]
        assert isinstance(properties, dict)
        assert set(schema["required"]) <= set(properties)
        assert all(p["description"] for p in properties.values())
        assert spec.description
        json.dumps(schema)  # travels to the provider as JSON
    create: Any = next(s for s in specs if s.name == "create_task").parameters
    assert create["required"] == ["title"]
    assert create["properties"]["priority"]["enum"] == ["low", "medium", "high"]


async def test_create_task_stores_every_field_and_reports_it_compactly(
    store: MemoryTaskStore,
) -> None:
    tools = tools_for(store)
    result, content = await call(
        tools,
        "create_task",
        {
            "title": "Call the dentist",
            "due_date": "2025-06-13",
            "due_time": "15:30",
            "priority": "high",
            "project": "Health",
        },
    )
    assert result.ok
    [task] = await store.list_tasks(ANN)
    assert task.title == "Call the dentist"
    assert task.due_date == dt.date(2025, 6, 13)
    assert task.due_time == dt.time(15, 30)
    assert task.priority is Priority.HIGH
    assert task.project_name == "Health"
    assert content["task"]["id"] == task.id
    assert content["created_project"] is True
    assert ", " not in result.content  # compact separators save the model's tokens
    assert result.summary["task_id"] == task.id
    assert result.summary["title"] == "Call the dentist"
    assert result.summary["priority"] == "high"  # the arguments are part of the record
    assert "call the dentist" in result.spoken.lower()
    assert "Friday" in result.spoken


async def test_create_task_reuses_a_project_named_nearly_the_same(store: MemoryTaskStore) -> None:
    tools = tools_for(store)
    await call(tools, "create_task", {"title": "Buy apples", "project": "Groceries"})
    _, content = await call(tools, "create_task", {"title": "Buy pears", "project": "groceries"})
    assert "created_project" not in content
    assert len(await store.list_projects(ANN)) == 1
    assert {t.project_name for t in await store.list_tasks(ANN)} == {"Groceries"}


async def test_a_due_time_without_a_date_means_today(store: MemoryTaskStore) -> None:
    await call(tools_for(store), "create_task", {"title": "Stand-up", "due_time": "9:45"})
    [task] = await store.list_tasks(ANN)
    assert task.due_date == NOW.date()
    assert task.due_time == dt.time(9, 45)


async def test_arguments_are_read_leniently(store: MemoryTaskStore) -> None:
    tools = tools_for(store)
    result, _ = await call(
        tools, "create_task", {"title": "  Buy bread ", "priority": "HIGH", "project": ""}
    )
    assert result.ok
    [task] = await store.list_tasks(ANN)
    assert (task.title, task.priority, task.project_id) == ("Buy bread", Priority.HIGH, None)
    await store.complete_task(ANN, task.id)
    _, content = await call(tools, "list_tasks", {"include_done": "true", "extra": 1})
    assert content["count"] == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"title": "Buy', "not valid JSON"),
        ('["Buy milk"]', "must be a JSON object"),
        ("{}", "'title' is required"),
        ('{"title": "   "}', "'title' is required"),
        ('{"title": "Buy milk", "priority": "urgent"}', "'priority' must be one of low, medium"),
        ('{"title": "Buy milk", "due_date": "next friday"}', "'due_date' has the wrong format"),
        ('{"title": "Buy milk", "due_date": "2025-02-30"}', "'due_date' 2025-02-30 is not"),
        ('{"title": "Buy milk", "due_time": "25:00"}', "'due_time' 25:00 is not a time"),
        ('{"title": ["Buy milk"]}', "'title' must be a string"),
    ],
)
async def test_bad_arguments_give_the_model_a_clear_error_and_change_nothing(
    store: MemoryTaskStore, arguments: str, message: str
) -> None:
    result, content = await call(tools_for(store), "create_task", arguments)
    assert not result.ok
    assert message in content["error"]
    assert result.error == content["error"]
    assert await store.list_tasks(ANN, include_done=True) == []


async def test_several_problems_are_reported_together(store: MemoryTaskStore) -> None:
    result, _ = await call(tools_for(store), "rename_task", {"task": 3})
    assert result.error is not None
    assert "'new_title' is required" in result.error
    result, _ = await call(tools_for(store), "list_tasks", {"include_done": "maybe"})
    assert result.error is not None
    assert "'include_done' must be true or false" in result.error


async def test_an_unknown_tool_is_an_error_naming_the_real_tools(store: MemoryTaskStore) -> None:
    result, content = await call(tools_for(store), "order_pizza", {"size": "large"})
    assert not result.ok
    assert "unknown tool 'order_pizza'" in content["error"]
    assert "create_task" in content["error"]


async def test_complete_task_matches_a_misheard_title(seeded: MemoryTaskStore) -> None:
    result, content = await call(tools_for(seeded), "complete_task", {"task": "by milk"})
    assert result.ok
    assert content["task"]["title"] == "Buy milk"
    assert content["task"]["done"] is True
    assert await titles(seeded, done=True) == ["Buy milk"]
    assert result.summary["task"] == "by milk"
    assert result.summary["title"] == "Buy milk"


async def test_a_task_can_be_named_by_its_id(seeded: MemoryTaskStore) -> None:
    [task] = [t for t in await seeded.list_tasks(ANN) if t.title == "Clean the garage"]
    result, _ = await call(tools_for(seeded), "delete_task", {"task": task.id})
    assert result.ok
    assert "Clean the garage" not in await titles(seeded)


async def test_delete_and_rename_match_fuzzily(seeded: MemoryTaskStore) -> None:
    tools = tools_for(seeded)
    result, _ = await call(tools, "delete_task", {"task": "water plants"})
    assert result.ok
    result, content = await call(
        tools, "rename_task", {"task": "the electricity bill", "new_title": "Pay the gas bill"}
    )
    assert result.ok
    assert content["old_title"] == "Pay the electricity bill"
    assert await titles(seeded) == ["Buy milk", "Pay the gas bill", "Clean the garage"]


async def test_an_ambiguous_title_returns_the_candidates_so_the_model_can_ask(
    store: MemoryTaskStore,
) -> None:
    first = await store.add_task(ANN, NewTask(title="Buy milk"))
    second = await store.add_task(ANN, NewTask(title="Buy milk", due_date=dt.date(2025, 6, 12)))
    tools = tools_for(store)
    result, content = await call(tools, "complete_task", {"task": "buy milk"})
    assert not result.ok
    assert "ambiguous" in content["error"]
    assert {c["id"] for c in content["candidates"]} == {first.id, second.id}
    assert result.spoken.startswith("Did you mean")
    assert await titles(store, done=True) == []
    result, _ = await call(tools, "complete_task", {"task": second.id})
    assert result.ok
    assert [t.id for t in await store.list_tasks(ANN, include_done=True) if t.done] == [second.id]


async def test_an_unmatched_title_is_not_found_with_the_closest_titles(
    seeded: MemoryTaskStore,
) -> None:
    result, content = await call(tools_for(seeded), "complete_task", {"task": "file taxes"})
    assert not result.ok
    assert "no task matches 'file taxes'" in content["error"]
    assert set(content["hint"]["closest_titles"]) <= set(TITLES)
    assert await titles(seeded, done=True) == []


async def test_completing_a_done_task_says_it_is_already_done(seeded: MemoryTaskStore) -> None:
    tools = tools_for(seeded)
    await call(tools, "complete_task", {"task": "buy milk"})
    result, content = await call(tools, "complete_task", {"task": "buy milk"})
    assert not result.ok
    assert "already done" in content["error"]


async def test_list_tasks_filters_by_done_project_and_date(store: MemoryTaskStore) -> None:
    tools = tools_for(store)
    await call(tools, "create_task", {"title": "Buy apples", "project": "Groceries"})
    await call(tools, "create_task", {"title": "Call mum", "due_date": "2025-06-12"})
    await call(tools, "create_task", {"title": "Old chore"})
    await call(tools, "complete_task", {"task": "old chore"})
    _, content = await call(tools, "list_tasks", {})
    assert [t["title"] for t in content["tasks"]] == ["Buy apples", "Call mum"]
    _, content = await call(tools, "list_tasks", {"include_done": True})
    assert content["count"] == 3
    assert content["tasks"][-1]["done"] is True
    _, content = await call(tools, "list_tasks", {"project": "groceries"})
    assert [t["title"] for t in content["tasks"]] == ["Buy apples"]
    assert content["tasks"][0]["project"] == "Groceries"
    _, content = await call(tools, "list_tasks", {"due_date": "2025-06-12"})
    assert [t["title"] for t in content["tasks"]] == ["Call mum"]


async def test_list_tasks_of_an_unknown_project_names_the_real_ones(store: MemoryTaskStore) -> None:
    tools = tools_for(store)
    await call(tools, "create_project", {"name": "Garden"})
    result, content = await call(tools, "list_tasks", {"project": "work"})
    assert not result.ok
    assert content["projects"] == ["Garden"]


async def test_list_tasks_caps_the_listing_but_not_the_count(store: MemoryTaskStore) -> None:
    for i in range(40):
        await store.add_task(ANN, NewTask(title=f"Chore {i}"))
    result, content = await call(tools_for(store), "list_tasks", {})
    assert content["count"] == 40
    assert len(content["tasks"]) < 40
    assert content["truncated"] is True
    assert result.summary["count"] == 40


async def test_search_tasks_finds_similar_titles_open_and_done(seeded: MemoryTaskStore) -> None:
    tools = tools_for(seeded)
    await call(tools, "complete_task", {"task": "buy milk"})
    _, content = await call(tools, "search_tasks", {"query": "milk"})
    assert [t["title"] for t in content["tasks"]] == ["Buy milk"]
    _, content = await call(tools, "search_tasks", {"query": "bill"})
    assert [t["title"] for t in content["tasks"]] == ["Pay the electricity bill"]
    _, content = await call(tools, "search_tasks", {"query": "skydiving lessons"})
    assert content["count"] == 0


async def test_create_project_and_list_projects(store: MemoryTaskStore) -> None:
    tools = tools_for(store)
    result, content = await call(tools, "create_project", {"name": "Garden"})
    assert result.ok
    assert content["already_existed"] is False
    _, content = await call(tools, "create_project", {"name": "garden"})
    assert content["already_existed"] is True
    assert content["project"]["name"] == "Garden"
    _, content = await call(tools, "list_projects", "")  # no arguments at all is fine
    assert [p["name"] for p in content["projects"]] == ["Garden"]


async def test_a_store_failure_is_an_error_result_not_an_exception(seeded: MemoryTaskStore) -> None:
    seeded.fail_next(1)
    result, content = await call(tools_for(seeded), "complete_task", {"task": "buy milk"})
    assert not result.ok
    assert "unavailable" in content["error"]
    assert result.spoken
    assert await titles(seeded, done=True) == []


async def test_tools_of_one_scope_never_touch_another_scopes_tasks(seeded: MemoryTaskStore) -> None:
    bob = tools_for(seeded, BOB)
    [milk] = [t for t in await seeded.list_tasks(ANN) if t.title == "Buy milk"]
    result, _ = await call(bob, "complete_task", {"task": "buy milk"})
    assert not result.ok
    result, _ = await call(bob, "delete_task", {"task": milk.id})
    assert not result.ok
    _, content = await call(bob, "list_tasks", {"include_done": True})
    assert content["count"] == 0
    await call(bob, "create_task", {"title": "Buy milk"})
    assert await titles(seeded) == TITLES
    assert await titles(seeded, BOB) == ["Buy milk"]


async def test_only_the_enabled_tools_are_offered_and_run(store: MemoryTaskStore) -> None:
    tools = TaskTools(store, ANN, clock=lambda: NOW, enabled={"list_tasks", "search_tasks"})
    assert [s.name for s in tools.specs()] == ["list_tasks", "search_tasks"]
    result, content = await call(tools, "create_task", {"title": "Buy milk"})
    assert not result.ok
    assert "unknown tool 'create_task'" in content["error"]
    assert await titles(store) == []
    listed, _ = await call(tools, "list_tasks", {})
    assert listed.ok


async def test_no_enabled_tools_offers_none(store: MemoryTaskStore) -> None:
    assert TaskTools(store, ANN, enabled=()).specs() == ()
