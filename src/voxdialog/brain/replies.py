"""Replies: the assistant's spoken sentences (plain words for text-to-speech, no markup)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from voxdialog.brain.dates import MONTHS, WEEKDAYS, Period
from voxdialog.brain.entities import spoken_title
from voxdialog.brain.tasks import Priority, TaskRecord
from voxdialog.brain.words import number_words, ordinal_words

READ_AT_MOST = 5
"""How many tasks a list reads out before "and N more"."""

EXAMPLES = "add a task to call the dentist on Friday, or what are my tasks for today"
HELP = (
    "I keep your to-do list.",
    "You can say things like: add a task to call the dentist on Friday, what are my tasks "
    "for today, mark water the plants as done, delete the second one, rename buy milk to buy "
    "oat milk, or create a project called garden.",
)
DIDNT_CATCH = ("Sorry, I didn't catch that.", f"You can say things like: {EXAMPLES}.")
INTERNAL_ERROR = ("Sorry, something went wrong on my side.", "Please say that again.")
NOT_ENABLED = ("Sorry, I'm not set up to do that here.",)
STORE_ERROR = ("Sorry, I couldn't reach your task list just now.", "Please try again in a moment.")


def quote(title: str) -> str:
    """A task title or name in quotes, as said mid-sentence."""
    return f"“{spoken_title(title)}”"


def count_phrase(n: int, noun: str = "task") -> str:
    """ "no tasks", "one task", "three tasks"."""
    if n == 0:
        return f"no {noun}s"
    return f"{number_words(n)} {noun}" + ("" if n == 1 else "s")


def say_time(time: dt.time) -> str:
    """ "noon", "three PM", "seven thirty AM", "six oh five PM"."""
    if time == dt.time(12, 0):
        return "noon"
    if time == dt.time(0, 0):
        return "midnight"
    hour = time.hour % 12 or 12
    suffix = "AM" if time.hour < 12 else "PM"
    if time.minute == 0:
        return f"{number_words(hour)} {suffix}"
    minute = number_words(time.minute)
    if time.minute < 10:
        minute = f"oh {minute}"
    return f"{number_words(hour)} {minute} {suffix}"


def say_date(date: dt.date, *, today: dt.date) -> str:
    """ "today", "tomorrow", "Friday" (this week), or "Monday, June sixteenth"."""
    days = (date - today).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    weekday = WEEKDAYS[date.weekday()].capitalize()
    if 1 < days < 7:
        return weekday
    month = MONTHS[date.month - 1].capitalize()
    year = f", {date.year}" if date.year != today.year and days > 180 else ""
    return f"{weekday}, {month} {ordinal_words(date.day)}{year}"


def say_due(date: dt.date | None, time: dt.time | None, *, today: dt.date) -> str:
    """ "Friday at three PM", "tomorrow", "" when there is no due date."""
    if date is None:
        return ""
    when = say_date(date, today=today)
    return f"{when} at {say_time(time)}" if time is not None else when


def say_period(period: Period, *, today: dt.date) -> str:
    """How a list's period is said back: "for today", "for this week", "for Friday"."""
    labels = {
        "this_week": "for this week",
        "next_week": "for next week",
        "weekend": "for the weekend",
        "next_weekend": "for next weekend",
    }
    return labels.get(period.label) or f"for {say_date(period.start, today=today)}"


def describe(task: TaskRecord, *, today: dt.date) -> str:
    """A task as read out in a list: "water the plants, due Friday, high priority"."""
    parts = [spoken_title(task.title)]
    due = say_due(task.due_date, task.due_time, today=today)
    if due:
        parts.append(f"due {due}")
    if task.priority is Priority.HIGH:
        parts.append("high priority")
    return ", ".join(parts)


def read_list(tasks: Sequence[TaskRecord], *, today: dt.date) -> list[str]:
    """Sentences that read tasks out in order ("First, ..."), then "And two more." if needed."""
    sentences = []
    for i, task in enumerate(tasks[:READ_AT_MOST], start=1):
        text = describe(task, today=today)
        sentences.append(f"{ordinal_words(i).capitalize()}, {text}.")
    extra = len(tasks) - READ_AT_MOST
    if extra > 0:
        sentences.append(f"And {number_words(extra)} more.")
    return sentences


def closest(names: Sequence[str]) -> str:
    """ "“a”" or "“a” and “b”", for "the closest ones are ..."."""
    return " and ".join(quote(n) for n in names)


def added(task: TaskRecord, *, today: dt.date) -> str:
    """The sentence after "Done." for a new task."""
    sentence = f"I added {quote(task.title)}"
    if task.project_name:
        sentence += f" to your {task.project_name} project"
    due = say_due(task.due_date, task.due_time, today=today)
    if due:
        sentence += f" for {due}"
    if task.priority is Priority.HIGH:
        sentence += ", marked high priority"
    elif task.priority is Priority.LOW:
        sentence += ", marked low priority"
    return sentence + "."
