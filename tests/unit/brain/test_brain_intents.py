import datetime as dt

import pytest

from voxdialog.brain.intents import Intent, parse_command
from voxdialog.brain.tasks import Priority

TODAY = dt.date(2025, 6, 11)  # a Wednesday


def parse(text: str, **kwargs: bool):
    return parse_command(text, today=TODAY, now=dt.time(9, 0), **kwargs)


@pytest.mark.parametrize(
    "text",
    [
        "Add a task to call the dentist on Friday.",
        "Add a test to call the dentist on Friday.",
        "at a test to call the dentist on Friday.",
        "Add a desk to call the dentist on Friday",
        "Add a tusk two call the dentist on Friday",
        "Had a task to call the dentist on Friday",
        "Um, can you please add a task to call the dentist on Friday?",
        "Could you add a new task called call the dentist on Friday, please",
        "Hi, add call the dentist on Friday to my list.",
        "Remind me to call the dentist on Friday",
        "I need to call the dentist on Friday.",
        "On Friday I have to call the dentist",
        "New task: call the dentist on Friday",
    ],
)
def test_add_task_phrasings_and_misrecognitions_give_the_same_task(text):
    command = parse(text)
    assert command.intent is Intent.ADD_TASK
    assert command.title == "Call the dentist"
    assert command.due.date == dt.date(2025, 6, 13)
    assert command.confidence >= 0.6


@pytest.mark.parametrize(
    ("text", "priority"),
    [
        ("Add a high priority task to finish the report", Priority.HIGH),
        ("At a hi priority test to finish the report", Priority.HIGH),
        ("Add an urgent task to finish the report", Priority.HIGH),
        ("Add a task to finish the report, it's important", Priority.HIGH),
        ("Add a task to finish the report with low priority", Priority.LOW),
        ("add a medium priority task to finish the report", Priority.MEDIUM),
    ],
)
def test_priorities_are_taken_out_of_the_title(text, priority):
    command = parse(text)
    assert (command.intent, command.title, command.priority) == (
        Intent.ADD_TASK,
        "Finish the report",
        priority,
    )


@pytest.mark.parametrize(
    ("text", "project"),
    [
        ("Add a task to prune the roses to my garden project", "Garden"),
        ("Add a task to prune the roses in the garden project", "Garden"),
        ("Add a task for project garden to prune the roses", "Garden"),
        ("add a task to prune the roses for the project called back yard", "Back yard"),
    ],
)
def test_projects_are_taken_out_of_the_title(text, project):
    command = parse(text)
    assert (command.title, command.project) == ("Prune the roses", project)


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Note to self, buy batteries", "Buy batteries"),
        ("Put milk on the shopping list", "Milk"),
        ("Add to my list pick up the kids", "Pick up the kids"),
        ("Set a reminder to call Sarah", "Call Sarah"),
        ("Add by eggs to my list.", "Buy eggs"),  # a title never starts with "by"
        ("I want to learn Spanish", "Learn Spanish"),
    ],
)
def test_other_ways_to_add_a_task(text, title):
    command = parse(text)
    assert (command.intent, command.title) == (Intent.ADD_TASK, title)


def test_add_urgent_colon_is_a_priority_not_part_of_the_title():
    command = parse("Add urgent: fix the roof")
    assert (command.title, command.priority) == ("Fix the roof", Priority.HIGH)


def test_titles_keep_names_and_inner_words():
    command = parse("Add a task to send the report to Anna on Monday at 10 am")
    assert command.title == "Send the report to Anna"
    assert (command.due.date, command.due.time) == (dt.date(2025, 6, 16), dt.time(10, 0))


@pytest.mark.parametrize(
    ("text", "label", "project"),
    [
        ("What are my tasks for today?", "today", None),
        ("Let's my tasks for this week.", "this_week", None),  # Whisper's "List my tasks"
        ("What do I have to do tomorrow?", "tomorrow", None),
        ("show the tasks in my garden project", None, "Garden"),
        ("what's on my list", None, None),
        ("read me my tasks", None, None),
    ],
)
def test_list_requests(text, label, project):
    command = parse(text)
    assert command.intent is Intent.LIST_TASKS
    assert (command.period.label if command.period else None) == label
    assert command.project == project


def test_count_requests():
    command = parse("How many tasks are left for today?")
    assert command.intent is Intent.COUNT_TASKS
    assert command.period is not None
    assert command.period.label == "today"
    assert parse("how many tasks in my work project").project == "Work"


@pytest.mark.parametrize(
    ("text", "intent", "query"),
    [
        ("Mark water the plants as done.", Intent.COMPLETE_TASK, "water the plants"),
        ("Markwater the plants is done.", Intent.COMPLETE_TASK, "water the plants"),
        ("Complete the task by milk.", Intent.COMPLETE_TASK, "buy milk"),  # homophone
        (
            "I finished paying the electricity bill",
            Intent.COMPLETE_TASK,
            "paying the electricity bill",
        ),
        ("the laundry is done", Intent.COMPLETE_TASK, "laundry"),
        ("Delete the past water to plant.", Intent.DELETE_TASK, "water to plant"),
        (
            "Remove Book of Flight to Berlin from my list.",
            Intent.DELETE_TASK,
            "Book of Flight to Berlin",
        ),
        (
            "Cancel the task pick up the dry cleaning",
            Intent.DELETE_TASK,
            "pick up the dry cleaning",
        ),
        ("get rid of the dentist task", Intent.DELETE_TASK, "dentist task"),
    ],
)
def test_complete_and_delete_keep_the_heard_title_for_matching(text, intent, query):
    command = parse(text)
    assert command.intent is intent
    assert command.target is not None
    assert command.target.queries[0] == query


@pytest.mark.parametrize(
    ("text", "ordinal"),
    [
        ("complete the second one", 2),
        ("mark number two as done", 2),
        ("complete number to", 2),
        ("delete the last one", -1),
        ("delete the 3rd task", 3),
        ("mark the first one as done", 1),
        ("Rename task 2 to buy almond milk", 2),
        ("complete 3", 3),
    ],
)
def test_ordinals_refer_to_positions(text, ordinal):
    command = parse(text)
    target = command.renames[0].target if command.renames else command.target
    assert target is not None
    assert target.ordinal == ordinal


def test_it_and_that_one_are_pronoun_references():
    for text in ("delete it", "complete that one", "mark it as done"):
        command = parse(text)
        assert command.target is not None
        assert command.target.pronoun, text


def test_rename_offers_every_split_of_x_to_y():
    command = parse("change send the report to Anna to send the report to Maria")
    assert command.intent is Intent.RENAME_TASK
    splits = [(r.target.queries[0], r.new_title) for r in command.renames]
    assert ("send the report to Anna", "Send the report to Maria") in splits
    assert parse("Renamed by milk to buy oat milk.").renames[0].new_title == "Buy oat milk"


def test_changing_a_due_date_or_priority_is_understood_as_unsupported():
    assert parse("change the due date of buy milk to Friday").unsupported == "task_change"
    assert parse("mark buy milk as urgent").unsupported == "task_change"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Create a project called kitchen renovation", "Kitchen renovation"),
        ("Start a new project named Vacation Planning.", "Vacation Planning"),
        ("new project work", "Work"),
        ("add a garden project", "Garden"),
    ],
)
def test_create_project(text, name):
    command = parse(text)
    assert (command.intent, command.title) == (Intent.CREATE_PROJECT, name)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Hello there.", Intent.GREETING),
        ("good morning", Intent.GREETING),
        ("Thank you so much.", Intent.THANKS),
        ("ok thanks", Intent.THANKS),
        ("Goodbye.", Intent.GOODBYE),
        ("What can you do?", Intent.HELP),
        ("Help me. What can I say?", Intent.HELP),
        ("What's the weather like in Paris?", Intent.UNKNOWN),
        ("blah blah", Intent.UNKNOWN),
        ("", Intent.UNKNOWN),
    ],
)
def test_small_talk_help_and_unknown(text, intent):
    assert parse(text).intent is intent


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Yes, do it.", "yes"),
        ("yeah", "yes"),
        ("correct", "yes"),
        ("That's right.", "yes"),
        ("No, cancel that.", "no"),
        ("nope", "no"),
        ("never mind", "no"),
    ],
)
def test_yes_and_no_answers(text, answer):
    command = parse(text, expecting_answer=True)
    assert (command.intent, command.answer) == (Intent.CONFIRM, answer)


def test_a_yes_before_a_command_only_counts_when_a_question_is_pending():
    assert parse("yes, delete buy milk", expecting_answer=True).intent is Intent.CONFIRM
    assert parse("yes, delete buy milk").intent is Intent.DELETE_TASK


def test_a_task_said_without_a_verb_but_with_a_date_is_a_low_confidence_add():
    command = parse("call the dentist on Friday")
    assert command.intent is Intent.ADD_TASK
    assert command.confidence < 0.6
    assert parse("what's the weather tomorrow").intent is Intent.UNKNOWN
