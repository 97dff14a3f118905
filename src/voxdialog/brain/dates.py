"""Spoken dates and times: "on Friday", "tomorrow at 5 pm", "March 3rd", "in two days"."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from voxdialog.brain.words import (
    CARDINAL,
    ORDINAL,
    Words,
    number_value,
    ordinal_value,
    token_pattern,
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_MONTH_ALIASES = {m[:3]: i + 1 for i, m in enumerate(MONTHS)} | {"sept": 9}
_MONTH_VALUES = {m: i + 1 for i, m in enumerate(MONTHS)} | _MONTH_ALIASES

_PREP = r"(?:(?:due|on|by|for|until|till|before|from|this coming|coming|due on|due by) )?"
_WEEKDAY = rf"(?P<weekday>{'|'.join(WEEKDAYS)})s?"
_MONTH_NAMES = "|".join([*MONTHS, *(k for k in _MONTH_ALIASES if k != "may")])
_DAY_NUM = rf"(?:{ORDINAL}|{CARDINAL})"
_PART = r"(?: (?P<part>morning|afternoon|evening|night))?"
_RELATIVE = token_pattern(
    rf"{_PREP}(?P<rel>the day after tomorrow|tomorrow|tmrw|to morrow|today|tonight"
    r"|this (?:morning|afternoon|evening)|later today|next week|this weekend|the weekend"
    rf"|next weekend|the end of the week|end of the week|end of day){_PART}"
)
_WEEKDAY_RE = token_pattern(rf"{_PREP}(?:(?P<next>next|this) )?{_WEEKDAY}{_PART}")
_IN_MINUTES = token_pattern(
    rf"(?:in|within) (?P<n>{CARDINAL}|a|an|half an|a half|a couple of|a few|to|too)"
    r" (?P<unit>minutes?|mins?|hours?|hrs?)(?: from now)?"
)
_IN_DAYS = token_pattern(
    rf"(?:(?:in|within) )?(?P<n>{CARDINAL}|a|an|to|too|a couple of|a few) (?P<unit>days?|weeks?)"
    r"(?: time)?(?: from (?:now|today))?"
)
# "may" is a month only before a day number, so "I may" never becomes a date.
_MONTH_DAY = token_pattern(
    rf"{_PREP}(?:the )?(?:(?P<month>{_MONTH_NAMES}|may) (?:the )?(?P<day>{_DAY_NUM})"
    rf"|(?P<day2>{_DAY_NUM}) (?:of )?(?P<month2>{_MONTH_NAMES}))"
)
_THE_DAY = token_pattern(rf"(?:on|by|for|due) the (?P<day>{ORDINAL})")

_HOUR = rf"(?P<hour>\d{{1,2}}(?::(?P<min>\d\d))?|{CARDINAL})"
_MINUTE_WORDS = rf"(?P<minw>(?:oh |o )?{CARDINAL})"
_MERIDIEM = r"(?P<mer>am|pm|oclock|in the morning|in the afternoon|in the evening|at night|tonight)"
_BARE_CLOCK = rf"(?:\d{{1,2}}(?::\d\d)?|{CARDINAL})(?: (?:oh |o )?{CARDINAL})? (?:am|pm|oclock)"
# A time needs an "at" before it or an "am"/"pm" after it; a bare number is no time.
_CLOCK = token_pattern(
    rf"(?=(?:at|by|around|from) |{_BARE_CLOCK}(?!\S))(?:(?:at|by|around|from) )?"
    rf"{_HOUR}(?: {_MINUTE_WORDS})?(?: {_MERIDIEM})?"
)
_NAMED_TIME = token_pattern(
    r"(?:at |by |around )?(?P<named>noon|midday|midnight|lunchtime|lunch time)"
)
_PAST_TO = token_pattern(
    rf"(?:at |by |around )?(?P<frac>half past|quarter past|quarter to) (?P<hour>{CARDINAL})"
    rf"(?: {_MERIDIEM})?"
)
_AFTER_TIME = frozenset(
    ("today", "tomorrow", "tonight", "on", "this", "next", "every", "and", "in", "to", *WEEKDAYS)
)
_WEEK_PERIOD = token_pattern(
    r"(?:(?:for|this|of|in|during|over) )?(?:(?:the|this|next|coming) )(?P<which>week|weekend)"
    r"(?: ahead)?"
)


@dataclass(frozen=True, slots=True)
class Period:
    """A span of days a list or count is about; ``label`` is how it was said."""

    start: dt.date
    end: dt.date
    label: str

    def contains(self, day: dt.date | None) -> bool:
        """Whether ``day`` falls in the period."""
        return day is not None and self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class Due:
    """When a task is due, as far as the words said."""

    date: dt.date | None = None
    time: dt.time | None = None
    part_of_day: str | None = None  # "morning" etc., to place a bare "at 7"


def weekday_on_or_after(today: dt.date, weekday: int, *, skip_today: bool) -> dt.date:
    """The next date with ``weekday`` (0 = Monday), today included unless ``skip_today``."""
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and skip_today:
        ahead = 7
    return today + dt.timedelta(days=ahead)


def _relative_date(rel: str, today: dt.date) -> dt.date:
    if rel in ("today", "tonight", "later today", "end of day") or rel.startswith("this "):
        return today
    if rel in ("tomorrow", "tmrw", "to morrow"):
        return today + dt.timedelta(days=1)
    if rel == "the day after tomorrow":
        return today + dt.timedelta(days=2)
    if rel == "next week":
        return weekday_on_or_after(today, 0, skip_today=True)
    if rel in ("this weekend", "the weekend"):
        return weekday_on_or_after(today, 5, skip_today=False)
    if rel == "next weekend":
        return weekday_on_or_after(today, 0, skip_today=True) + dt.timedelta(days=5)
    return weekday_on_or_after(today, 4, skip_today=False)  # the end of the week: Friday


def _weekday_date(match: re.Match[str], today: dt.date) -> dt.date:
    weekday = WEEKDAYS.index(match.group("weekday"))
    if match.group("next") == "next":
        # "next Friday" is the Friday of next week (Monday to Sunday).
        monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7)
        return monday + dt.timedelta(days=weekday)
    # A bare "Friday" said on a Friday means the coming one, "this Friday" means today.
    return weekday_on_or_after(today, weekday, skip_today=match.group("next") != "this")


def _month_date(month: int, day: int, today: dt.date) -> dt.date | None:
    for year in (today.year, today.year + 1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def _day_number(phrase: str) -> int | None:
    return ordinal_value(phrase) or number_value(phrase)


def _cut_date(words: Words, today: dt.date) -> tuple[Words, dt.date | None, str | None]:
    found = words.search(_RELATIVE)
    if found:
        match, first, last = found
        part = match.group("part") or ("night" if match.group("rel") == "tonight" else None)
        if match.group("rel").startswith("this "):
            part = match.group("rel").split()[1]
        return words.without(first, last), _relative_date(match.group("rel"), today), part
    found = words.search(_WEEKDAY_RE)
    if found:
        match, first, last = found
        return words.without(first, last), _weekday_date(match, today), match.group("part")
    found = words.search(_IN_DAYS)
    if found:
        match, first, last = found
        said = match.group(0)
        if not said.startswith(("in ", "within ")) and not said.endswith((" now", " today")):
            return words, None, None  # "two days" alone is no date ("a task that takes a day")
        n_words = match.group("n")
        n = {"a couple of": 2, "a few": 3}.get(n_words) or number_value(n_words, loose=True) or 1
        days = n * 7 if match.group("unit").startswith("week") else n
        return words.without(first, last), today + dt.timedelta(days=days), None
    found = words.search(_MONTH_DAY)
    if found:
        match, first, last = found
        month_name = match.group("month") or match.group("month2")
        month = _MONTH_VALUES[month_name]
        day = _day_number(match.group("day") or match.group("day2"))
        date = _month_date(month, day, today) if day else None
        if date is not None:
            return words.without(first, last), date, None
    found = words.search(_THE_DAY)
    if found:
        match, first, last = found
        day = ordinal_value(match.group("day")) or 0
        year, month = today.year, today.month
        for _ in range(3):  # "on the 31st" may skip a short month
            try:
                candidate = dt.date(year, month, day)
            except ValueError:
                candidate = None
            if candidate is not None and candidate >= today:
                return words.without(first, last), candidate, None
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return words, None, None


def _hour_minute(match: re.Match[str]) -> tuple[int, int] | None:
    hour_text = match.group("hour")
    if hour_text is None:
        return None
    if match.group("min") is not None:
        return int(hour_text.split(":")[0]), int(match.group("min"))
    hour = number_value(hour_text)
    minute = 0
    if match.group("minw"):
        minute_text = re.sub(r"^(?:oh|o) ", "", match.group("minw"))
        minute = number_value(minute_text) or 0
    if hour is not None and hour >= 100:  # "730 pm" written without a colon
        hour, minute = divmod(hour, 100)
    return (hour, minute) if hour is not None else None


def _to_time(hour: int, minute: int, meridiem: str | None, part: str | None) -> dt.time | None:
    if meridiem in ("pm", "in the afternoon", "in the evening", "at night", "tonight") or (
        meridiem is None and part in ("afternoon", "evening", "night")
    ):
        hour = hour + 12 if hour < 12 else hour
    elif meridiem in ("am", "in the morning") or part == "morning":
        hour = 0 if hour == 12 else hour
    elif meridiem in (None, "oclock") and 1 <= hour <= 6:
        hour += 12  # nobody means "at 5" as five in the morning
    if not (0 <= hour < 24 and 0 <= minute < 60):
        return None
    return dt.time(hour, minute)


def _cut_time(words: Words, part: str | None) -> tuple[Words, dt.time | None, bool]:
    """Remove a time phrase; the flag says whether it was a bare morning hour ("at 8")."""
    found = words.search(_NAMED_TIME)
    if found:
        match, first, last = found
        hour = 0 if match.group("named") == "midnight" else 12
        return words.without(first, last), dt.time(hour, 0), False
    found = words.search(_PAST_TO)
    if found:
        match, first, last = found
        hour = number_value(match.group("hour")) or 0
        frac = match.group("frac")
        minute = 30 if frac == "half past" else 15 if frac == "quarter past" else 45
        hour = hour - 1 if frac == "quarter to" else hour
        when = _to_time(hour, minute, match.group("mer"), part)
        return (words.without(first, last), when, False) if when else (words, None, False)
    found = words.search(_CLOCK)
    if found:
        match, first, last = found
        hm = _hour_minute(match)
        bare = not (match.group("min") or match.group("minw") or match.group("mer"))
        # "look at two options" is no time: a bare "at two" counts only where a time can end.
        if bare and last < len(words) and words.norm[last] not in _AFTER_TIME:
            hm = None
        if hm is not None:
            meridiem = match.group("mer")
            when = _to_time(hm[0], hm[1], meridiem, part)
            if when is not None:
                ambiguous = meridiem in (None, "oclock") and part is None and when.hour < 12
                return words.without(first, last), when, ambiguous
    return words, None, False


def cut_due(words: Words, *, today: dt.date, now: dt.time | None = None) -> tuple[Words, Due]:
    """Remove the due date and time phrases from ``words`` and return what they said.

    Dates: "today", "tonight", "tomorrow", "on Friday" (the coming one, a week ahead when said
    on a Friday), "next Monday" (Monday of next week), "in two days", "March 3rd", "on the 5th".
    Times: "at 5 pm", "at 3:30", "at seven thirty", "half past four", "at noon". A time said
    without a date is today's, or tomorrow's when ``now`` is already past it.
    """
    found = words.search(_IN_MINUTES) if now is not None else None
    if found is not None and now is not None:
        match, first, last = found
        amount = match.group("n")
        n = {"half an": 0.5, "a half": 0.5, "a couple of": 2, "a few": 3}.get(amount)
        n = n or number_value(amount, loose=True) or 1
        minutes = n * 60 if match.group("unit").startswith("h") else n
        when = dt.datetime.combine(today, now) + dt.timedelta(minutes=minutes)
        at = when.time().replace(second=0, microsecond=0)
        return words.without(first, last), Due(date=when.date(), time=at)
    rest, date, part = _cut_date(words, today)
    rest, time, ambiguous = _cut_time(rest, part)
    if date is None:
        # The time may come first ("at 5 pm tomorrow"), so try the date again.
        rest, date, part = _cut_date(rest, today)
    if time is not None and date is None:
        # A bare time is today's, or tomorrow's once today's has passed.
        if now is not None and time <= now and ambiguous and time.hour + 12 > now.hour:
            time = time.replace(hour=time.hour + 12)  # "at 8" said at nine means tonight
        passed = now is not None and time <= now
        date = today + dt.timedelta(days=1) if passed else today
    return rest, Due(date=date, time=time, part_of_day=part)


def cut_period(words: Words, *, today: dt.date) -> tuple[Words, Period | None]:
    """Remove a period phrase ("for today", "this week", "on Friday") for a list or count."""
    found = words.search(_WEEK_PERIOD)
    if found:
        match, first, last = found
        nxt = "next" in match.group(0).split() or "coming" in match.group(0).split()
        monday = today - dt.timedelta(days=today.weekday())
        if nxt:
            monday += dt.timedelta(days=7)
        if match.group("which") == "weekend":
            start = monday + dt.timedelta(days=5)
            return words.without(first, last), Period(
                max(start, today),
                monday + dt.timedelta(days=6),
                "next_weekend" if nxt else "weekend",
            )
        start = monday if nxt else today
        label = "next_week" if nxt else "this_week"
        return words.without(first, last), Period(start, monday + dt.timedelta(days=6), label)
    rest, date, _ = _cut_date(words, today)
    if date is None:
        return words, None
    if date == today:
        label = "today"
    elif date == today + dt.timedelta(days=1):
        label = "tomorrow"
    else:
        label = date.isoformat()
    return rest, Period(date, date, label)
