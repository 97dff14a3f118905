import datetime as dt
import re

import pytest

from voxdialog.brain.assistant import TaskAssistant
from voxdialog.brain.base import Brain, BrainTurn, CommandOutcome, ReplyText
from voxdialog.brain.tasks import NewTask, Priority
from voxdialog.security.principal import Scope
from voxdialog.testing.tasks import MemoryTaskStore

NOW = dt.datetime(2025, 6, 11, 9, 0)  # a Wednesday morning
ANN = Scope("acme", "ann")
BOB = Scope("acme", "bob")
TITLES = ["Water the plants", "Buy milk", "Pay the electricity bill", "Clean the garage"]


async def say(session, text: str) -> tuple[str, CommandOutcome]:
    pieces: list[str] = []
    outcomes: list[CommandOutcome] = []
    async for event in session.respond(BrainTurn(text)):
        if isinstance(event, ReplyText):
            assert not outcomes, "text after the outcome"
            pieces.append(event.text)
        else:
            outcomes.append(event)
    assert len(outcomes) == 1
    assert pieces
    return "".join(pieces), outcomes[0]


@pytest.fixture
def store() -> MemoryTaskStore:
    return MemoryTaskStore()


@pytest.fixture
async def seeded(store: MemoryTaskStore) -> MemoryTaskStore:
    for title in TITLES:
        await store.add_task(ANN, NewTask(title=title))
    return store


def session_for(store: MemoryTaskStore, scope: Scope = ANN):
    assistant: Brain = TaskAssistant(store, clock=lambda: NOW)
    assert assistant.name == "assistant"
    return assistant.open_session(scope)


async def titles(store: MemoryTaskStore, scope: Scope = ANN, *, done: bool = False) -> list[str]:
    tasks = await store.list_tasks(scope, include_done=True)
    return [t.title for t in tasks if t.done == done]


@pytest.mark.parametrize(
    "text",
    [
        "add a task to buy bread",
        "what are my tasks",
        "how many tasks do I have",
        "complete buy milk",
        "delete the second one",
        "rename buy milk to buy oat milk",
        "create a project called home",
        "hello",
        "thanks",
        "bye",
        "what can you do",
        "yes",
        "no",
        "what's the weather like",
        "",
        "um",
        "delete feed the cat",
    ],
)
async def test_every_turn_streams_text_then_exactly_one_outcome(seeded, text):
    spoken, outcome = await say(session_for(seeded), text)
    assert 0.0 <= outcome.confidence <= 1.0
    assert outcome.processing_ms >= 0.0
    assert outcome.intent
    # Spoken English only: no markup, bullets or emoji.
    assert not re.search(r"[*#_`•\[\]<>]|^- ", spoken)
    assert all(ord(c) < 0x2000 or c in "“”’" for c in spoken)


async def test_adding_a_task_says_done_first_and_stores_it(store):
    session = session_for(store)
    pieces = [
        e async for e in session.respond(BrainTurn("Add a test to call the dentist on Friday."))
    ]
    assert isinstance(pieces[0], ReplyText)
    assert pieces[0].text == "Done."
    spoken = "".join(e.text for e in pieces if isinstance(e, ReplyText))
    assert spoken == "Done. I added “call the dentist” for Friday."
    outcome = pieces[-1]
    assert isinstance(outcome, CommandOutcome)
    assert (outcome.intent, outcome.success) == ("add_task", True)
    assert outcome.entities["title"] == "Call the dentist"
    assert outcome.entities["due_date"] == "2025-06-13"
    [task] = await store.list_tasks(ANN)
    assert (task.title, task.due_date) == ("Call the dentist", dt.date(2025, 6, 13))


async def test_time_and_priority_are_stored_and_said(store):
    spoken, outcome = await say(
        session_for(store), "add an urgent task to email the landlord at 3pm today"
    )
    [task] = await store.list_tasks(ANN)
    assert (task.due_date, task.due_time, task.priority) == (NOW.date(), dt.time(15), Priority.HIGH)
    assert (
        spoken == "Done. I added “email the landlord” for today at three PM, marked high priority."
    )
    assert outcome.entities["due_time"] == "15:00"


async def test_create_project_then_add_task_to_it(store):
    session = session_for(store)
    spoken, outcome = await say(session, "Create a project called garden.")
    assert (outcome.intent, outcome.success) == ("create_project", True)
    assert spoken == "Done. I created the project “Garden”."
    spoken, outcome = await say(session, "Add a task to prune the roses to my garden project.")
    assert spoken == "Done. I added “prune the roses” to your Garden project."
    [project] = await store.list_projects(ANN)
    [task] = await store.list_tasks(ANN, project_id=project.id)
    assert (task.title, task.project_name) == ("Prune the roses", "Garden")
    _, outcome = await say(session, "create project Garden")
    assert outcome.success
    assert len(await store.list_projects(ANN)) == 1


async def test_adding_to_a_new_project_creates_it_once(store):
    session = session_for(store)
    spoken, _ = await say(session, "add a task to fix the fence for project home")
    assert "I also created the project “Home”." in spoken
    spoken, _ = await say(session, "add a task to paint the door in the home project")
    assert "created" not in spoken
    assert [p.name for p in await store.list_projects(ANN)] == ["Home"]
    spoken, outcome = await say(session, "show the tasks in my home project")
    assert (
        spoken
        == "You have two tasks in your Home project. First, fix the fence. Second, paint the door."
    )
    assert outcome.entities["count"] == 2


async def test_a_middling_match_asks_and_yes_acts(seeded):
    session = session_for(seeded)
    spoken, outcome = await say(session, "Check off clean the brush.")
    assert spoken == "Did you mean “clean the garage”?"
    assert (outcome.intent, outcome.success) == ("complete_task", False)
    assert outcome.entities["awaiting_confirmation"] is True
    assert await titles(seeded, done=True) == []
    spoken, outcome = await say(session, "Yeah, do it.")
    assert spoken == "Done. I marked “clean the garage” as complete."
    assert (outcome.intent, outcome.success) == ("confirm", True)
    assert outcome.entities["action"] == "complete_task"
    assert await titles(seeded, done=True) == ["Clean the garage"]


async def test_no_drops_the_question_and_changes_nothing(seeded):
    session = session_for(seeded)
    await say(session, "delete clean the car")
    spoken, outcome = await say(session, "no")
    assert spoken == "Okay, I'll leave it."
    assert (outcome.intent, outcome.entities["answer"]) == ("confirm", "no")
    assert await titles(seeded) == TITLES
    spoken, outcome = await say(session, "yes")
    assert outcome.success is False  # nothing is pending any more
    assert await titles(seeded) == TITLES


async def test_a_new_command_instead_of_an_answer_drops_the_question(seeded):
    session = session_for(seeded)
    await say(session, "delete clean the car")
    _, outcome = await say(session, "add a task to buy bread")
    assert outcome.intent == "add_task"
    _, outcome = await say(session, "yes")
    assert (outcome.intent, outcome.success) == ("confirm", False)
    assert "Clean the garage" in await titles(seeded)


async def test_a_clear_match_acts_at_once(seeded):
    spoken, outcome = await say(session_for(seeded), "Delete the past water to plant.")
    assert spoken == "Done. I deleted “water the plants”."
    assert outcome.entities["title"] == "Water the plants"
    assert outcome.entities["query"] == "water to plant"
    assert await titles(seeded) == TITLES[1:]


async def test_no_match_names_the_closest_task(seeded):
    spoken, outcome = await say(session_for(seeded), "mark the oil change as done")
    assert spoken.startswith("Sorry, I couldn't find “oil change”.")
    assert outcome.success is False
    assert spoken.endswith("Say “what are my tasks” to hear your list.")
    spoken, outcome = await say(session_for(seeded), "delete clean the attic")
    assert (
        spoken == "Sorry, I couldn't find “clean the attic”. The closest one is “clean the garage”."
    )
    assert (outcome.intent, outcome.entities["query"]) == ("delete_task", "clean the attic")
    assert await titles(seeded) == TITLES


async def test_ordinals_refer_to_the_list_read_out(seeded):
    for title in ("Renew my passport", "Book a flight", "Call mom"):
        await seeded.add_task(ANN, NewTask(title=title, due_date=dt.date(2025, 6, 13)))
    session = session_for(seeded)
    spoken, outcome = await say(session, "What are my tasks?")
    assert spoken.startswith("You have seven tasks. First, water the plants. Second, buy milk.")
    assert spoken.endswith("Fifth, renew my passport, due Friday. And two more.")
    assert outcome.entities["count"] == 7
    spoken, outcome = await say(session, "Complete the second one.")
    assert spoken == "Done. I marked “buy milk” as complete."
    assert outcome.entities["ordinal"] == 2
    spoken, _ = await say(session, "delete the last one")  # the last one read out
    assert spoken == "Done. I deleted “renew my passport”."
    spoken, _ = await say(session, "complete number two")
    assert spoken == "You already finished “buy milk”."
    spoken, outcome = await say(session, "complete the ninth one")
    assert outcome.success is False
    assert "seven tasks" in spoken


async def test_it_refers_to_the_task_just_added(store):
    session = session_for(store)
    await say(session, "add a task to buy bread")
    spoken, _ = await say(session, "actually delete it")
    assert spoken == "Done. I deleted “buy bread”."
    assert await titles(store) == []
    spoken, outcome = await say(session, "delete it")
    assert (spoken, outcome.success) == ("Which task do you mean?", False)


async def test_lists_by_day_and_counts(seeded):
    await seeded.add_task(ANN, NewTask(title="Call mom", due_date=NOW.date()))
    await seeded.add_task(ANN, NewTask(title="Pay rent", due_date=dt.date(2025, 6, 12)))
    session = session_for(seeded)
    spoken, outcome = await say(session, "What are my tasks for today?")
    assert spoken == "You have one task for today. First, call mom, due today."
    assert outcome.entities["day"] == "today"
    spoken, _ = await say(session, "what do I have to do this week")
    assert spoken.startswith("You have two tasks for this week.")
    spoken, outcome = await say(session, "How many tasks do I have?")
    assert spoken == "You have six open tasks."
    assert outcome.entities["count"] == 6
    spoken, _ = await say(session, "how many tasks are left for tomorrow")
    assert spoken == "You have one task for tomorrow."
    spoken, _ = await say(session, "what's on for Saturday")
    assert spoken == "You have no tasks for Saturday."


async def test_rename_uses_the_split_that_names_an_existing_task(seeded):
    await seeded.add_task(ANN, NewTask(title="Send the report to Anna"))
    session = session_for(seeded)
    spoken, outcome = await say(session, "Renamed by milk to buy oat milk.")
    assert spoken == "Done. I renamed “buy milk” to “buy oat milk”."
    assert outcome.entities["new_title"] == "Buy oat milk"
    await say(session, "change send the report to Anna to send the report to Maria")
    assert await titles(seeded) == [
        *TITLES[:1],
        "Buy oat milk",
        *TITLES[2:],
        "Send the report to Maria",
    ]


async def test_unknown_is_graceful(seeded):
    spoken, outcome = await say(session_for(seeded), "What's the weather like in Paris?")
    assert spoken.startswith("Sorry, I didn't catch that. You can say things like: add a task to")
    assert (outcome.intent, outcome.success, outcome.confidence) == ("unknown", False, 0.0)
    assert await titles(seeded) == TITLES


async def test_a_guessed_task_is_asked_about_first(store):
    session = session_for(store)
    spoken, outcome = await say(session, "call the dentist on Friday")
    assert spoken == "Should I add “call the dentist” for Friday?"
    assert outcome.success is False
    assert await titles(store) == []
    spoken, _ = await say(session, "yes please")
    assert spoken == "Done. I added “call the dentist” for Friday."


async def test_a_task_without_a_title_is_asked_for(store):
    session = session_for(store)
    spoken, _ = await say(session, "add a new task")
    assert spoken == "Sure. What's the task?"
    spoken, outcome = await say(session, "water the lawn tomorrow")
    assert spoken == "Done. I added “water the lawn” for tomorrow."
    assert outcome.intent == "add_task"


@pytest.mark.parametrize(
    ("text", "intent", "first"),
    [
        ("hello", "greeting", "Hello."),
        ("thank you", "thanks", "You're welcome."),
        ("goodbye", "goodbye", "Goodbye."),
        ("what can you do", "help", "I keep your to-do list."),
    ],
)
async def test_small_talk_and_help(store, text, intent, first):
    spoken, outcome = await say(session_for(store), text)
    assert spoken.startswith(first)
    assert (outcome.intent, outcome.success) == (intent, True)


async def test_scopes_are_isolated(seeded):
    bob = session_for(seeded, BOB)
    spoken, _ = await say(bob, "what are my tasks")
    assert spoken == "Your task list is empty."
    spoken, outcome = await say(bob, "complete buy milk")
    assert outcome.success is False
    await say(bob, "add a task to buy milk")
    assert await titles(seeded, BOB) == ["Buy milk"]
    assert await titles(seeded, ANN) == TITLES
    spoken, _ = await say(session_for(seeded, ANN), "how many tasks do I have")
    assert spoken == "You have four open tasks."


async def test_store_errors_are_apologised_for(seeded):
    session = session_for(seeded)
    seeded.fail_next()
    spoken, outcome = await say(session, "add a task to buy bread")
    assert spoken.startswith("Sorry, I couldn't reach your task list")
    assert (outcome.intent, outcome.success) == ("add_task", False)
    assert outcome.error is not None
    assert "unavailable" in outcome.error
    assert await titles(seeded) == TITLES
    _, outcome = await say(session, "add a task to buy bread")
    assert outcome.success


async def test_an_internal_error_costs_one_answer_not_the_conversation(seeded, monkeypatch):
    session = session_for(seeded)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("parser bug")

    monkeypatch.setattr("voxdialog.brain.assistant.parse_command", broken)
    spoken, outcome = await say(session, "add a task to buy bread")
    assert spoken.startswith("Sorry, something went wrong")
    assert (outcome.success, outcome.error) == (False, "ValueError('parser bug')")
    monkeypatch.undo()
    _, outcome = await say(session, "add a task to buy bread")
    assert outcome.success


async def test_abandoning_a_reply_keeps_the_session_usable(seeded):
    session = session_for(seeded)
    stream = session.respond(BrainTurn("what are my tasks"))
    first = await anext(stream)
    assert isinstance(first, ReplyText)
    await stream.aclose()
    spoken, _ = await say(session, "complete the first one")
    assert spoken == "Done. I marked “water the plants” as complete."


async def test_an_agent_without_a_tool_has_its_action_declined(seeded):
    session = TaskAssistant(seeded, clock=lambda: NOW, tools={"list_tasks"}).open_session(ANN)
    said, outcome = await say(session, "add a task to buy bread")
    assert "not set up" in said
    assert (outcome.success, outcome.entities) == (False, {"tool_disabled": "create_task"})
    assert "buy bread" not in [t.lower() for t in await titles(seeded)]
    said, outcome = await say(session, "delete buy milk")
    assert outcome.entities == {"tool_disabled": "delete_task"}
    said, outcome = await say(session, "what are my tasks")
    assert outcome.success
    assert "milk" in said.lower()
