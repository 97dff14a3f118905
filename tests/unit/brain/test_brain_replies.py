import datetime as dt

import pytest

from voxdialog.brain.replies import count_phrase, read_list, say_date, say_time
from voxdialog.brain.tasks import Priority, TaskRecord
from voxdialog.brain.words import Words, number_value, number_words, ordinal_value, ordinal_words

TODAY = dt.date(2025, 6, 11)  # a Wednesday


@pytest.mark.parametrize(
    ("time", "said"),
    [
        (dt.time(15, 0), "three PM"),
        (dt.time(7, 30), "seven thirty AM"),
        (dt.time(18, 5), "six oh five PM"),
        (dt.time(12, 0), "noon"),
        (dt.time(0, 0), "midnight"),
        (dt.time(12, 45), "twelve forty five PM"),
    ],
)
def test_times_are_said_in_words(time, said):
    assert say_time(time) == said


@pytest.mark.parametrize(
    ("date", "said"),
    [
        (TODAY, "today"),
        (dt.date(2025, 6, 12), "tomorrow"),
        (dt.date(2025, 6, 13), "Friday"),
        (dt.date(2025, 6, 16), "Monday"),
        (dt.date(2025, 6, 20), "Friday, June twentieth"),
        (dt.date(2026, 3, 3), "Tuesday, March third, 2026"),
    ],
)
def test_dates_are_said_relative_to_today(date, said):
    assert say_date(date, today=TODAY) == said


def test_counts_and_numbers_are_words():
    assert [count_phrase(n) for n in (0, 1, 3, 21)] == [
        "no tasks",
        "one task",
        "three tasks",
        "twenty one tasks",
    ]
    assert [ordinal_words(n) for n in (1, 2, 3, 21, 30)] == [
        "first",
        "second",
        "third",
        "twenty first",
        "thirtieth",
    ]
    assert number_words(45) == "forty five"


def test_spoken_numbers_parse_back():
    assert number_value("twenty five") == 25
    assert number_value("to") is None
    assert number_value("to", loose=True) == 2
    assert ordinal_value("3rd") == ordinal_value("third") == 3
    assert ordinal_value("twenty first") == 21


def test_a_long_list_reads_five_then_says_how_many_more():
    tasks = [TaskRecord(id=str(i), title=f"Task {i}") for i in range(1, 8)]
    tasks[0] = TaskRecord(
        id="1", title="Call the dentist", due_date=dt.date(2025, 6, 13), priority=Priority.HIGH
    )
    sentences = read_list(tasks, today=TODAY)
    assert sentences[0] == "First, call the dentist, due Friday, high priority."
    assert sentences[1] == "Second, task 2."
    assert sentences[-1] == "And two more."
    assert len(sentences) == 6


def test_words_keep_what_was_heard_and_normalise_for_matching():
    words = Words.parse("What's on Anna's list at 3p.m., and 7.30am?")
    assert words.norm == ("whats", "on", "annas", "list", "at", "3", "pm", "and", "7:30", "am")
    assert words.orig[2] == "Anna's"
