"""Commands as Whisper tiny.en really heard them (see scripts/gen_asr_corpus.py)."""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from rapidfuzz import fuzz

from voxdialog.brain.assistant import TaskAssistant
from voxdialog.brain.base import BrainTurn, CommandOutcome, ReplyText
from voxdialog.brain.replies import READ_AT_MOST
from voxdialog.brain.tasks import NewTask, TaskRecord
from voxdialog.security.principal import Scope
from voxdialog.testing.tasks import MemoryTaskStore

CORPUS = json.loads((Path(__file__).parent / "asr_corpus.json").read_text(encoding="utf-8"))
NOW = dt.datetime(2025, 6, 11, 9, 0)  # REFERENCE_NOW of the generator: a Wednesday
SCOPE = Scope("acme", "ann")
SEEDED = [
    "Water the plants",
    "Buy milk",
    "Pay the electricity bill",
    "Book a flight to Berlin",
    "Send the report to Anna",
    "Clean the garage",
    "Renew my passport",
    "Pick up the dry cleaning",
]
PROJECTS = ["Work", "Garden", "Home"]


def similar(heard: str, expected: str) -> bool:
    return fuzz.ratio(heard.casefold(), expected.casefold()) >= 85


async def say(session, text: str) -> tuple[str, CommandOutcome]:
    pieces: list[str] = []
    outcomes: list[CommandOutcome] = []
    async for event in session.respond(BrainTurn(text)):
        if isinstance(event, ReplyText):
            pieces.append(event.text)
        else:
            outcomes.append(event)
    assert len(outcomes) == 1
    assert pieces
    return "".join(pieces), outcomes[0]


async def snapshot(store: MemoryTaskStore) -> dict[str, TaskRecord]:
    return {t.id: t for t in await store.list_tasks(SCOPE, include_done=True)}


async def seeded_session():
    store = MemoryTaskStore()
    for name in PROJECTS:
        await store.create_project(SCOPE, name)
    for title in SEEDED:
        await store.add_task(SCOPE, NewTask(title=title))
    return store, TaskAssistant(store, clock=lambda: NOW).open_session(SCOPE)


def check_added(expect: dict[str, Any], added: list[TaskRecord]) -> None:
    assert len(added) == 1, added
    [task] = added
    assert similar(task.title, expect["title"]), task.title
    assert (task.due_date.isoformat() if task.due_date else None) == expect.get("due")
    assert (task.due_time.strftime("%H:%M") if task.due_time else None) == expect.get("time")
    assert (task.priority.value if task.priority else None) == expect.get("priority")
    assert task.project_name == expect.get("project")


def target_of(expect: dict[str, Any]) -> str:
    if "ordinal" not in expect:
        return str(expect["title"])
    ordinal = expect["ordinal"]
    return SEEDED[ordinal - 1] if ordinal > 0 else SEEDED[READ_AT_MOST - 1]


async def check_item(item: dict[str, Any]) -> None:
    expect = item["expect"]
    intent = expect["intent"]
    store, session = await seeded_session()
    if "ordinal" in expect:
        await say(session, "What are my tasks?")
    before = await snapshot(store)
    spoken, outcome = await say(session, item["heard"])
    if outcome.entities.get("awaiting_confirmation"):
        # A clarifying question is right when it names the right thing: a person says yes.
        assert spoken.endswith("?")
        spoken, outcome = await say(session, "yes")
        assert outcome.intent == "confirm"
    else:
        assert outcome.intent == intent, spoken
    after = await snapshot(store)
    changed = {i for i in before if before[i] != after.get(i)}
    if intent == "add_task":
        check_added(expect, [t for i, t in after.items() if i not in before])
    elif intent in ("complete_task", "delete_task", "rename_task"):
        [task_id] = changed
        assert before[task_id].title == target_of(expect)
        if intent == "complete_task":
            assert after[task_id].done
        elif intent == "delete_task":
            assert task_id not in after
        else:
            assert similar(after[task_id].title, expect["new_title"]), after[task_id].title
    else:
        assert after == before
    if intent in ("list_tasks", "count_tasks"):
        assert outcome.entities.get("day") == expect.get("day")
        assert outcome.entities.get("project") == expect.get("project")
    if intent == "create_project":
        names = [p.name for p in await store.list_projects(SCOPE)]
        assert any(similar(name, expect["name"]) for name in names), names
    if intent == "confirm":
        assert outcome.entities["answer"] == expect["answer"]


async def check_unrecoverable(item: dict[str, Any]) -> None:
    store, session = await seeded_session()
    before = await snapshot(store)
    spoken, outcome = await say(session, item["heard"])
    assert outcome.intent == "unknown" or spoken.endswith("?"), spoken
    assert await snapshot(store) == before


def item_id(item: dict[str, Any]) -> str:
    return f"{item['expect']['intent']}:{item['heard'][:40]}"


@pytest.mark.parametrize("item", CORPUS, ids=[item_id(i) for i in CORPUS])
async def test_real_recognitions_are_understood(item):
    if item.get("unrecoverable"):
        await check_unrecoverable(item)
    else:
        await check_item(item)


def test_the_corpus_is_real_varied_and_mostly_recoverable():
    misheard = [
        i
        for i in CORPUS
        if i["heard"].casefold().strip(".?! ") != i["spoken"].casefold().strip(".?! ")
    ]
    intents = {i["expect"]["intent"] for i in CORPUS}
    recoverable = [i for i in CORPUS if not i.get("unrecoverable")]
    assert len(CORPUS) >= 40
    assert len(misheard) >= 10
    assert len(intents) >= 12
    assert len(recoverable) >= 0.9 * len(CORPUS)
    assert all(i.get("reason") for i in CORPUS if i.get("unrecoverable"))
