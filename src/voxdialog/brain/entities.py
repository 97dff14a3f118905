"""Entities of a task command: priority, project, title and references to listed tasks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxdialog.brain.tasks import Priority
from voxdialog.brain.words import (
    CARDINAL,
    ORDINAL,
    Words,
    number_value,
    ordinal_value,
    repeated,
    token_pattern,
)

# Whisper tiny hears "task" in command position as all of these ("add a test to ...",
# "delete the past ..."); they count as "task" only where a task word is expected.
TASK_WORD = (
    r"(?:tasks?|tests?|desks?|tusks?|casks?|tax|taxes|texts?|tasked|dusk|past|ask|toss|taste"
    r"|tess|tosk|todos?|to dos?|to do|reminders?|items?|entry|entries)"
)
TASK_NOUN = r"(?:tasks|tests|desks|task|todos|to dos|to do list|todo list|task list|list)"
CONNECTOR = r"(?:to|two|too|2|that|called|named|titled|saying|about|which is|thats|of)"

_LEVELS = {
    "high": Priority.HIGH, "hi": Priority.HIGH, "top": Priority.HIGH, "highest": Priority.HIGH,
    "urgent": Priority.HIGH, "important": Priority.HIGH, "critical": Priority.HIGH,
    "asap": Priority.HIGH, "urgently": Priority.HIGH, "one": Priority.HIGH, "1": Priority.HIGH,
    "medium": Priority.MEDIUM, "normal": Priority.MEDIUM, "mid": Priority.MEDIUM,
    "middle": Priority.MEDIUM, "two": Priority.MEDIUM, "2": Priority.MEDIUM,
    "low": Priority.LOW, "lowest": Priority.LOW, "three": Priority.LOW, "3": Priority.LOW,
}  # fmt: skip
_LEVEL_WORD = r"(?P<level>high|hi|top|highest|low|lowest|medium|normal|mid|middle|urgent)"
_PRIORITY_PHRASES = (
    token_pattern(rf"(?:(?:with|as|of) )?(?:(?:a|an) )?{_LEVEL_WORD} priority"),
    token_pattern(
        r"(?:(?:with|and) )?priority (?P<level>high|hi|low|medium|normal|one|two|three|1|2|3)"
    ),
    token_pattern(rf"(?P<level>urgent|important|critical)(?= {TASK_WORD}(?!\S))"),
    token_pattern(
        r"(?:(?:its|it is|this is|thats|and its|and it is|make it|mark it as|mark it|as|as an?"
        r"|very|really|super) )*(?P<level>urgent|urgently|important|critical|asap)$"
    ),
)

_HEAD_LEVEL = token_pattern(
    r"^(?:add|ad|create|new|put)(?: (?:an?|the))? (?P<level>urgent|important|critical)"
)
# A project name is one to three words, none of them a function word ("finish the project
# report" has no project "finish the").
_NAME_WORD = r"(?!(?:the|a|an|my|our|your|to|two|too|for|this|that|of|and|with)(?!\S))\S+"
_NAME = rf"(?P<name>{_NAME_WORD}(?: {_NAME_WORD}){{0,2}}?)"
_AFTER_NAME = r"(?=$| (?:to|two|too|that)(?!\S))"
_PROJECT_PHRASES = (
    # "for project home to fix the fence": the name runs to the next connector.
    token_pattern(
        r"(?:to|in|into|for|under|on|from|of|at) (?:the |my |our )?project (?:called |named )?"
        rf"{_NAME}{_AFTER_NAME}"
    ),
    token_pattern(
        rf"(?:to|in|into|for|under|on|from|of|at|onto) (?:the |my |our )?{_NAME} projects?"
        rf"{_AFTER_NAME}"
    ),
)
_LIST_PROJECT_PHRASES = (
    token_pattern(rf"(?:the |my )?project (?:called |named )?{_NAME}(?: tasks?)?$"),
    token_pattern(rf"(?:the |my ){_NAME} project(?: tasks?)?$"),
)

_REF_ORDINAL = token_pattern(
    rf"(?:the )?(?P<ord>{ORDINAL}|last|final|latest|top|bottom|first)"
    rf"(?: (?:one|{TASK_WORD}|thing|entry))?(?: (?:on|in|from) (?:the|my) list)?"
)
_REF_NUMBER = token_pattern(
    rf"(?:(?:the )?(?:number|no|one|{TASK_WORD}|thing)(?: number)?)"
    rf" (?P<num>{CARDINAL}|to|too|for|won)"
)
_REF_BARE_NUMBER = token_pattern(rf"(?P<num>{CARDINAL})")
_REF_PRONOUN = token_pattern(
    r"(?:it|that|this|that one|this one|the one|that task|this task|the task|the same one)"
)

_LEADING_JUNK = token_pattern(
    "^"
    + repeated(
        rf"{CONNECTOR}|i need to|i have to|i must|i should|remember to|remind me to|a task to"
    )
)
_TRAILING_LIST = token_pattern(
    rf"(?:to|on|onto|in|into|as|two) (?:a |my |the |our )?(?:new )?(?:{TASK_NOUN}|todos?"
    r"|tasks?|reminders?|list of tasks|shopping list|to do)$"
)
_HOMOPHONE_VERBS = {"by": "buy", "bye": "buy", "right": "write", "rite": "write"}
_DANGLING = frozenset(
    ("to", "on", "at", "by", "due", "for", "in", "and", "until", "before", "with")
)
_DANGLING_HEAD = frozenset(("to", "two", "too", "that", "and", "also", "then"))


@dataclass(frozen=True, slots=True)
class TaskRef:
    """How the user pointed at a task: by (heard) title, by position in the last list, or "it"."""

    queries: tuple[str, ...] = ()
    ordinal: int | None = None  # 1-based; -1 is the last one
    pronoun: bool = False


def cut_priority(words: Words) -> tuple[Words, Priority | None]:
    """Remove priority phrases ("high priority", "an urgent task", "..., it's important")."""
    found: Priority | None = None
    head = words.search(_HEAD_LEVEL)
    if head is not None:  # "add urgent: fix the roof": only the level word goes
        found = _LEVELS[head[0].group("level")]
        words = words.without(head[2] - 1, head[2])
    for pattern in _PRIORITY_PHRASES:
        words, match = words.cut(pattern)
        if match is not None and found is None:
            found = _LEVELS[match.group("level")]
    return words, found


def cut_project(words: Words, *, listing: bool = False) -> tuple[Words, str | None]:
    """Remove a project phrase ("to my work project", "for project home") and return the name.

    With ``listing``, a bare "the garden project" or "project home" at the end counts too.
    """
    patterns = _PROJECT_PHRASES + (_LIST_PROJECT_PHRASES if listing else ())
    for pattern in patterns:
        found = words.search(pattern)
        if found is None:
            continue
        match, first, last = found
        name_start = first + match.group(0)[: match.start("name") - match.start()].count(" ")
        name = words.slice(name_start, name_start + match.group("name").count(" ") + 1)
        return words.without(first, last), natural_name(name.original())
    return words, None


def clean_title(words: Words) -> str:
    """The title as heard, without connectors, list phrases and dangling prepositions."""
    previous = None
    while previous != words.norm:
        previous = words.norm
        words, _ = words.cut(_LEADING_JUNK)
        words, _ = words.cut(_TRAILING_LIST)
        while words and words.norm[-1] in _DANGLING:
            words = words.slice(0, -1)
        while words and words.norm[0] in _DANGLING_HEAD:
            words = words.slice(1)
    if len(words) > 1 and words.norm[0] in _HOMOPHONE_VERBS:
        # A title never starts with "by" ("by Friday" is cut as a date): it is "buy".
        verb = _HOMOPHONE_VERBS[words.norm[0]]
        orig = verb.capitalize() if words.orig[0][:1].isupper() else verb
        words = Words((orig, *words.orig[1:]), (verb, *words.norm[1:]))
    return words.original()


def task_ref(words: Words, *, alternatives: tuple[Words, ...] = ()) -> TaskRef:
    """A reference to an existing task: "the second one", "number two", "it", or a title."""
    text = words.text
    ordinal = _REF_ORDINAL.fullmatch(text)
    if ordinal:
        word = ordinal.group("ord")
        if word in ("last", "final", "latest", "bottom"):
            return TaskRef(ordinal=-1)
        if word == "top":
            return TaskRef(ordinal=1)
        value = ordinal_value(word)
        if value:
            return TaskRef(ordinal=value)
    number = _REF_NUMBER.fullmatch(text) or _REF_BARE_NUMBER.fullmatch(text)
    if number:
        value = number_value(number.group("num"), loose=True)
        if value:
            return TaskRef(ordinal=value)
    if _REF_PRONOUN.fullmatch(text):
        return TaskRef(pronoun=True)
    queries = [clean_title(words)]
    queries += [clean_title(alt) for alt in alternatives]
    return TaskRef(queries=tuple(dict.fromkeys(q for q in queries if q)))


def natural_name(text: str) -> str:
    """A heard name with its first letter capitalised ("kitchen renovation" -> "Kitchen ...")."""
    text = text.strip()
    return text[:1].upper() + text[1:]


def spoken_title(title: str) -> str:
    """A stored title as said mid-sentence: "Call the dentist" -> "call the dentist"."""
    first = title.split(" ", 1)[0]
    if len(first) > 1 and (first.isupper() or not first[1:].islower()):
        return title  # an acronym or a name with inner capitals ("NASA", "McDonald")
    if first == "I" or re.fullmatch(r"I'\w+", first):
        return title
    return title[:1].lower() + title[1:]
