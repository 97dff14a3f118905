import datetime as dt

import pytest

from voxdialog.brain.dates import cut_due, cut_period
from voxdialog.brain.words import Words

WEDNESDAY = dt.date(2025, 6, 11)
FRIDAY = dt.date(2025, 6, 13)


def due(text: str, today: dt.date = WEDNESDAY, now: dt.time | None = dt.time(9, 0)):
    rest, found = cut_due(Words.parse(text), today=today, now=now)
    return rest.original(), found.date, found.time


def test_friday_said_on_wednesday_is_this_friday():
    assert due("call the dentist on Friday") == ("call the dentist", FRIDAY, None)


def test_friday_said_on_a_friday_is_next_weeks_friday_but_this_friday_is_today():
    assert due("call the dentist on Friday", today=FRIDAY)[1] == dt.date(2025, 6, 20)
    assert due("call the dentist this Friday", today=FRIDAY)[1] == FRIDAY


def test_next_monday_is_monday_of_next_week():
    assert due("renew the insurance next Monday")[1] == dt.date(2025, 6, 16)
    assert due("renew the insurance next Monday", today=dt.date(2025, 6, 16))[1] == dt.date(
        2025, 6, 23
    )


def test_next_friday_on_a_wednesday_skips_this_weeks_friday():
    assert due("next friday")[1] == dt.date(2025, 6, 20)


@pytest.mark.parametrize(
    ("text", "title", "date", "time"),
    [
        ("email the landlord at 3pm today", "email the landlord", WEDNESDAY, dt.time(15, 0)),
        ("walk the dog tomorrow at 7.30am", "walk the dog", dt.date(2025, 6, 12), dt.time(7, 30)),
        ("dinner on Saturday at 8 p.m.", "dinner", dt.date(2025, 6, 14), dt.time(20, 0)),
        ("call mom at half past four", "call mom", WEDNESDAY, dt.time(16, 30)),
        ("meet Bob at seven thirty tonight", "meet Bob", WEDNESDAY, dt.time(19, 30)),
        ("lunch at noon on Friday", "lunch", FRIDAY, dt.time(12, 0)),
        ("pay rent at 3:30", "pay rent", WEDNESDAY, dt.time(15, 30)),
        ("pay rent at 730 pm", "pay rent", WEDNESDAY, dt.time(19, 30)),
    ],
)
def test_dates_and_times_are_cut_from_the_title(text, title, date, time):
    assert due(text) == (title, date, time)


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("schedule a haircut on March 3rd", dt.date(2026, 3, 3)),  # March has passed: next year
        ("schedule a haircut on the 3rd of July", dt.date(2025, 7, 3)),
        ("schedule a haircut on June twentieth", dt.date(2025, 6, 20)),
        ("pay the rent in two days", dt.date(2025, 6, 13)),
        ("pay the rent in to days", dt.date(2025, 6, 13)),  # Whisper's "two"
        ("pay the rent in a week", dt.date(2025, 6, 18)),
        ("pay the rent two days from now", dt.date(2025, 6, 13)),
        ("pay the rent on the 5th", dt.date(2025, 7, 5)),
        ("pay the rent the day after tomorrow", dt.date(2025, 6, 13)),
        ("pay the rent by the end of the week", FRIDAY),
    ],
)
def test_calendar_and_relative_dates(text, date):
    rest, found, _ = due(text)
    assert found == date
    assert rest == " ".join(text.split()[:3])


def test_a_bare_time_already_past_today_means_tomorrow_and_a_bare_evening_hour_means_pm():
    assert due("call mom at 8 am", now=dt.time(9, 0))[1:] == (dt.date(2025, 6, 12), dt.time(8))
    assert due("call mom at 8", now=dt.time(9, 0))[1:] == (WEDNESDAY, dt.time(20, 0))


def test_in_minutes_and_hours_count_from_now():
    assert due("check the oven in 20 minutes") == ("check the oven", WEDNESDAY, dt.time(9, 20))
    assert due("call back in half an hour")[2] == dt.time(9, 30)
    late = due("call back in two hours", now=dt.time(23, 30))
    assert late[1:] == (dt.date(2025, 6, 12), dt.time(1, 30))


def test_numbers_that_are_not_times_stay_in_the_title():
    assert due("look at two options") == ("look at two options", None, None)
    assert due("buy 2 apples") == ("buy 2 apples", None, None)
    assert due("I may call Anna") == ("I may call Anna", None, None)


@pytest.mark.parametrize(
    ("text", "label", "start", "end"),
    [
        ("what are my tasks for today", "today", WEDNESDAY, WEDNESDAY),
        ("what do I have to do tomorrow", "tomorrow", dt.date(2025, 6, 12), dt.date(2025, 6, 12)),
        ("list my tasks for this week", "this_week", WEDNESDAY, dt.date(2025, 6, 15)),
        ("what is on next week", "next_week", dt.date(2025, 6, 16), dt.date(2025, 6, 22)),
        ("tasks on friday", "2025-06-13", FRIDAY, FRIDAY),
    ],
)
def test_periods_for_lists(text, label, start, end):
    _, period = cut_period(Words.parse(text), today=WEDNESDAY)
    assert period is not None
    assert (period.label, period.start, period.end) == (label, start, end)
