"""Intents: what a (possibly misrecognised) utterance asks the task assistant to do."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from voxdialog.brain.dates import Due, Period, cut_due, cut_period
from voxdialog.brain.entities import (
    TASK_NOUN,
    TASK_WORD,
    TaskRef,
    clean_title,
    cut_priority,
    cut_project,
    natural_name,
    task_ref,
)
from voxdialog.brain.phrases import leading_answer, small_talk, strip_filler, yes_or_no
from voxdialog.brain.tasks import Priority
from voxdialog.brain.words import Words, longest_first, repeated, token_pattern


class Intent(enum.StrEnum):
    """The intents of the built-in task assistant (recorded as voice-command intents)."""

    ADD_TASK = "add_task"
    LIST_TASKS = "list_tasks"
    COUNT_TASKS = "count_tasks"
    COMPLETE_TASK = "complete_task"
    DELETE_TASK = "delete_task"
    RENAME_TASK = "rename_task"
    CREATE_PROJECT = "create_project"
    HELP = "help"
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    CONFIRM = "confirm"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Rename:
    """One way to read "rename X to Y": which task, and its new title as heard."""

    target: TaskRef
    new_title: str


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed utterance: the intent, how sure the parser is, and the entities heard."""

    intent: Intent
    confidence: float
    title: str = ""  # add_task: the title; create_project: the name
    due: Due = field(default_factory=Due)
    priority: Priority | None = None
    project: str | None = None
    period: Period | None = None
    target: TaskRef | None = None  # complete_task, delete_task
    renames: tuple[Rename, ...] = ()  # rename_task: every split of "X to Y"
    answer: str | None = None  # confirm: "yes" or "no"
    unsupported: str | None = None  # something understood but not possible, e.g. "due_change"


_HELP = token_pattern(
    r"help|what can you do|what can i say|what can i ask|what do you do|how does this work"
    r"|how do i use (?:this|you)|what (?:are|is) (?:the|your) (?:commands|options)"
    r"|what commands|how can you help|instructions|what are you able to do|what do i say"
)
_COMMAND_START = token_pattern(
    r"^(?:add|create|delete|remove|complete|mark|rename|change|remind|list|show|cancel|finish)"
)
_COUNT = token_pattern(
    r"^(?:how many|how much|count|number of|whats the number of|what is the number of|hows many"
    r"|tell me how many|give me the number of)(?: .*)?$"
)
_RENAME_HEAD = token_pattern(
    rf"^(?:rename|renamed|renaming|re name|change|changed|update|edit|modify|retitle|reword)"
    rf"(?: the)?(?: (?:name|title|wording|text) of)?(?: (?:the|my))?(?: {TASK_WORD})?"
    r"(?: (?:called|named))?"
)
_RENAME_SEPARATORS = frozenset(("to", "two", "too", "2", "into", "as"))
_NEW_TITLE_HEAD = token_pattern("^" + repeated("say|read|be|just|instead|simply|now"))
_NEW_TITLE_TAIL = token_pattern("instead$")
_UNSUPPORTED_CHANGE = token_pattern(
    r"^(?:the )?(?:priority|due date|date|time|deadline|due time|day|project)(?: .*)?$"
)
_PROJECT_HEAD = token_pattern(
    r"^(?:(?:create|make|start|add|set up|open|begin|at|and|had|ad|creating|created|new|i need"
    r"|i want)(?: (?:a|an|the|me a|one))?(?: new)? |new |a new )"
    r"(?:project|projects|prodject|proj)(?: (?:called|named|titled|for|with the name|by the name"
    r"|name))?"
)
_PROJECT_TAIL = token_pattern(
    r"^(?:create|make|start|set up|begin|add|new)(?: (?:a|an|the))?(?: new)?"
    r" (?P<name>\S+(?: \S+){0,2}) project$"
)
_PROJECT_JUNK = token_pattern(repeated("project|please") + "$")
_REF_LEAD = token_pattern(
    rf"^(?:(?:the|my|that)(?: {TASK_WORD})?|{TASK_WORD})(?: (?:called|named))?"
)
_COMPLETE_VERB = token_pattern(
    # "take off" is Whisper's "tick off"; completing is also the safer reading.
    "^"
    + longest_first(
        "mark|mock|marked|march|mark off|check off|checkoff|checked off|tick off|ticked off"
        "|take off|took off|cross off|crossed off|cross out|strike off|strike out|scratch off"
        "|complete|completed|compete|competed|completes|finish|finished|finnish|close|close out"
        "|done with|i finished|i just finished|i completed|i just completed|ive finished"
        "|ive just finished|ive completed|i have finished|i have completed|ive done|i have done"
        "|i did|i just did|im done with|i am done with|im finished with|i am finished with"
        "|we finished|done"
    )
)
_COMPLETE_TAIL = token_pattern(
    r"(?:(?:as|is|has|a|us|at|so|was|to) )?(?:done|complete|completed|finished|finish|dun)$"
)
_IS_DONE = token_pattern(r"(?:is|are|was|has been|have been) (?:done|complete|completed|finished)$")
_SET_PRIORITY = token_pattern(
    r"(?:as|to) (?:an? )?(?:urgent|important|critical|high priority|low priority|priority)$"
)
_DELETE_VERB = token_pattern(
    "^"
    + longest_first(
        "delete|deleted|deletes|deleting|the lead|dilete|delite|remove|removed|removes|cancel"
        "|cancelled|canceled|drop|erase|scratch|get rid of|forget|forget about|discard|trash"
        "|throw away|kill|eliminate"
    )
)
_DELETE_TAIL = token_pattern(
    r"(?:from|off|of|on|in|out of|for) (?:my |the |our )?"
    rf"(?:{TASK_NOUN}|todos|to do list|reminders)$"
)
_LIST_VERB = token_pattern(
    r"^(?:list|lists|show|show me|read|read me|read out|tell me|give me|what are|whats|what is"
    r"|which are|what do i have|what have i got|what have i|do i have|have i got|is there"
    r"|are there|any|get|display|go through|open|check|see|review|view|remind me of|recap"
    r"|what|which)(?: .*)?$"
)
# "show me" + a period or project ("show me tomorrow", "what about the garden project").
_LIST_LEAD = token_pattern(
    r"(?:list|show|read|tell|give|what|whats|what is|what are|which|anything|any|do|have|is"
    r"|are|get|display|go through|open|check|see|review|view|recap|how about|and)"
    r"(?: (?:me|my|the|all|everything|anything|stuff|on|in|due|for|planned|about|of|got|have|i"
    r"|do|is|there|up|we|us|out))*"
)
_LIST_NOUN = token_pattern(
    r".*\b(?:tasks?|tests?|desks?|tusks?|texts|casks|todos?|to dos?|to do|list|agenda|schedule"
    r"|reminders|things"
    r"|anything|everything|plans|stuff|items|due|pending|outstanding|left|remaining)\b.*"
)
_LIST_BARE = token_pattern(
    r"(?:(?:my|the|all|open|current|pending|outstanding|remaining|upcoming|read|show|list) )*"
    rf"(?:{TASK_NOUN}|to do|agenda|schedule|tasks to do)"
)
_LIST_QUESTION = token_pattern(
    r"^(?:whats|what is|what do i have|what have i got|anything|is there anything|what else is)"
    rf"(?: (?:on|in|due|left|planned|scheduled|coming up|next|up next|for))+(?: my| the)?"
    rf"(?: {TASK_NOUN}| agenda| schedule| plate)?$"
    r"|^what (?:do|have|did|should|must) i (?:have|got|need|gotta)(?: to)?"
    r"(?: do| get done| planned| on| left| going on)?$|^what (?:should|must) i do(?: next)?$"
)
_ADD_VERB = (
    r"(?:add|ad|adds|added|adding|plus|create|make|new|put|insert|log|write|set up|set|enter"
    r"|save)"
)
_ADD_MISHEARD_VERB = r"(?:at|and|had|odd|ed|it|that)"
_ADD_TASK = token_pattern(
    rf"^(?P<verb>{_ADD_VERB}|{_ADD_MISHEARD_VERB})(?: (?:a|an|the|one|another|me a|my|us a))?"
    rf"(?: new)? (?P<noun>{TASK_WORD})(?: (?:to|two|too|2|that|called|named|titled|saying"
    r"|about|for|of|which is|thats|is|says))?"
    rf"|^(?:a )?new (?P<noun2>{TASK_WORD})(?: (?:to|two|too|that|called|named|is|for))?"
    rf"|^(?:a|an) (?P<noun3>{TASK_WORD}) (?:to|two|too|that|called|named)"
)
_TRIGGERS = [
    "remind me", "remember", "dont let me forget", "dont forget", "do not forget", "i need",
    "i have", "ive got", "i got", "i must", "i should", "i gotta", "i have got", "make a note",
    "make a note that i need", "note", "make sure", "make sure i", "make sure to",
    "i need to remember", "need", "have", "i still need", "i still have", "we need", "we have",
    "note to self", "set a reminder", "create a reminder", "add a reminder",
]  # fmt: skip
_ADD_TRIGGER = token_pattern(
    "^"
    + longest_first("|".join(_TRIGGERS))
    + r"(?: (?:to|about|that i need to|that i have to|that i|that|of))?"
)
_LIST_NAME = rf"(?:my |the |our )?(?:\S+ )?(?:{TASK_NOUN}|to do list)"
_ADD_TO_LIST = token_pattern(
    r"^(?P<verb>add|ad|put|stick|throw|pop|write|jot|at)"
    rf" (?P<rest>.+?) (?:to|on|onto|in|into|two) {_LIST_NAME}$"
)
_ADD_LIST_HEAD = token_pattern(
    rf"^(?:add|ad|put|write|at) (?:to|on|onto|in|into) {_LIST_NAME}(?: (?:that|to))?"
)
_QUESTION = token_pattern(
    r"^(?:what|whats|how|hows|where|wheres|when|who|whos|why|is|are|do|does|did|can|will|would"
    r"|should|could|tell me)"
)
_ADD_PLAIN = token_pattern(r"^(?:add|ad|adds|added|plus|jot down|write down|note down|put down)")


def parse_command(
    text: str, *, today: dt.date, now: dt.time | None = None, expecting_answer: bool = False
) -> Command:
    """Understand one recognised utterance.

    Args:
        text: What speech recognition heard, punctuation and all.
        today: The user's date, for "tomorrow" and "on Friday".
        now: The user's time of day, for a bare "at 5".
        expecting_answer: A yes/no question is pending, so "yes, do it" answers it.

    Returns:
        The intent, the parser's confidence (0..1) and the entities; ``Intent.UNKNOWN``
        with confidence 0 when nothing fits.
    """
    words, wanted = strip_filler(_split_glued(Words.parse(text)))
    if not words:
        return Command(Intent.UNKNOWN, 0.0)
    answer = yes_or_no(words)
    if expecting_answer and answer is None and (lead := leading_answer(words)):
        answer = lead[0]
    if answer is not None and (expecting_answer or small_talk(words) is None):
        return Command(Intent.CONFIRM, 0.95, answer=answer)
    if (chat := small_talk(words)) is not None:
        return Command(Intent(chat), 0.95)
    if (lead := leading_answer(words)) is not None:
        words = lead[1]  # "no, delete buy milk" with nothing pending: the command counts
    if words.search(_HELP) and not words.search(_COMMAND_START) and len(words) <= 10:
        return Command(Intent.HELP, 0.9)
    for detect in (_count, _rename, _create_project, _complete, _delete, _list):
        command = detect(words, today)
        if command is not None:
            if wanted and command.intent is Intent.RENAME_TASK and not command.renames:
                break  # "I want to change the oil" is a task, not a rename
            return command
    command = _add(words, today, now)
    if command is not None:
        return command
    if wanted:
        return _add_with_title(words, today, now, confidence=0.6)
    guess = _add_with_title(words, today, now, confidence=0.4)
    question = words.search(_QUESTION) is not None
    if guess.due.date is not None and len(guess.title.split()) >= 2 and not question:
        return guess  # "call the dentist on Friday": probably a task; the assistant asks first
    return Command(Intent.UNKNOWN, 0.0)


def _split_glued(words: Words) -> Words:
    """Split "Markwater" (Whisper's "mark water") into two tokens."""
    if words and words.norm[0].startswith("mark") and len(words.norm[0]) > 6:
        rest = words.norm[0][4:]
        if rest not in ("et", "er", "ed", "ers", "ets", "ing", "up", "down", "edly"):
            orig = words.orig[0][4:]
            return Words(("Mark", orig, *words.orig[1:]), ("mark", rest, *words.norm[1:]))
    return words


def _count(words: Words, today: dt.date) -> Command | None:
    if not words.search(_COUNT):
        return None
    words, project = cut_project(words, listing=True)
    _, period = cut_period(words, today=today)
    return Command(Intent.COUNT_TASKS, 0.9, project=project, period=period)


def _rename(words: Words, _today: dt.date) -> Command | None:
    rest, head = words.cut(_RENAME_HEAD)
    if head is None:
        return None
    if rest.search(_UNSUPPORTED_CHANGE):
        return Command(Intent.UNKNOWN, 0.5, unsupported="task_change")
    renames: list[Rename] = []
    for i, token in enumerate(rest.norm):
        if token in _RENAME_SEPARATORS and 0 < i < len(rest) - 1:
            new_words, _ = rest.slice(i + 1).cut(_NEW_TITLE_HEAD)
            new_words, _ = new_words.cut(_NEW_TITLE_TAIL)
            new_title = clean_title(new_words)
            if new_title:
                renames.append(Rename(task_ref(rest.slice(0, i)), natural_name(new_title)))
    if renames and all(_only_due_or_priority(r.new_title) for r in renames):
        return Command(Intent.UNKNOWN, 0.5, unsupported="task_change")
    return Command(Intent.RENAME_TASK, 0.9, renames=tuple(renames))


def _only_due_or_priority(title: str) -> bool:
    words = Words.parse(title)
    rest, due = cut_due(words, today=dt.date(2000, 1, 1))
    rest, priority = cut_priority(rest)
    return (due.date is not None or priority is not None) and not rest


def _create_project(words: Words, _today: dt.date) -> Command | None:
    rest, head = words.cut(_PROJECT_HEAD)
    if head is not None:
        rest, _ = rest.cut(_PROJECT_JUNK)
        return Command(Intent.CREATE_PROJECT, 0.9, title=natural_name(rest.original()))
    found = words.search(_PROJECT_TAIL)
    if found is not None and not words.search(token_pattern(TASK_WORD)):
        match, _, _ = found
        start = match.start("name")
        first = words.text.count(" ", 0, start)
        name = words.slice(first, first + match.group("name").count(" ") + 1)
        return Command(Intent.CREATE_PROJECT, 0.85, title=natural_name(name.original()))
    return None


def _reference(after_verb: Words) -> TaskRef:
    """The task a complete/delete points at; an empty ``TaskRef`` when none was said."""
    ref = task_ref(after_verb)
    if ref.ordinal is not None or ref.pronoun:
        return ref
    rest, _ = after_verb.cut(_REF_LEAD)
    if not rest:
        return TaskRef()
    # "delete the past water ..." may also be a task called "past water ...": try both.
    alternatives = (after_verb,) if after_verb.norm != rest.norm else ()
    return task_ref(rest, alternatives=alternatives)


def _complete(words: Words, _today: dt.date) -> Command | None:
    after_verb, verb = words.cut(_COMPLETE_VERB)
    if verb is None:
        found = words.search(_IS_DONE)
        if found is None or found[1] == 0:
            return None
        return Command(Intent.COMPLETE_TASK, 0.85, target=_reference(words.slice(0, found[1])))
    if after_verb.search(_SET_PRIORITY):
        return Command(Intent.UNKNOWN, 0.5, unsupported="task_change")
    after_verb, _ = after_verb.cut(_COMPLETE_TAIL)
    return Command(Intent.COMPLETE_TASK, 0.9, target=_reference(after_verb))


def _delete(words: Words, _today: dt.date) -> Command | None:
    after_verb, verb = words.cut(_DELETE_VERB)
    if verb is None:
        return None
    after_verb, _ = after_verb.cut(_DELETE_TAIL)
    return Command(Intent.DELETE_TASK, 0.9, target=_reference(after_verb))


def _list(words: Words, today: dt.date) -> Command | None:
    rest, project = cut_project(words, listing=True)
    rest, period = cut_period(rest, today=today)
    text = rest.text
    listing = bool(_LIST_VERB.fullmatch(text) and _LIST_NOUN.fullmatch(text))
    listing = listing or bool(_LIST_BARE.fullmatch(text) or _LIST_QUESTION.search(text))
    if period is not None or project is not None:
        listing = listing or not rest or bool(_LIST_LEAD.fullmatch(text))
    if not listing:
        return None
    return Command(Intent.LIST_TASKS, 0.9, project=project, period=period)


def _add(words: Words, today: dt.date, now: dt.time | None) -> Command | None:
    rest, due = cut_due(words, today=today, now=now)
    rest, project = cut_project(rest)
    rest, priority = cut_priority(rest)
    confidence = 0.0
    after, head = rest.cut(_ADD_TASK)
    if head is not None:
        noun = head.group("noun") or head.group("noun2")
        exact = noun in ("task", "tasks", "todo", "to do", "reminder")
        misheard_verb = head.group("verb") in ("at", "and", "had", "odd", "ed", "it", "that")
        confidence = 0.75 if noun is None else 0.95 if exact and not misheard_verb else 0.8
    elif (found := rest.search(_ADD_TO_LIST)) is not None:
        match, _, _ = found
        first = rest.text.count(" ", 0, match.start("rest"))
        after = rest.slice(first, first + match.group("rest").count(" ") + 1)
        confidence = 0.85
    elif (found := rest.search(_ADD_LIST_HEAD)) is not None:
        after = rest.slice(found[2])
        confidence = 0.85
    else:
        after, head = rest.cut(_ADD_TRIGGER)
        confidence = 0.85
        if head is None:
            after, head = rest.cut(_ADD_PLAIN)
            confidence = 0.75
            if head is None:
                return None
    title = clean_title(after)
    return Command(
        Intent.ADD_TASK,
        confidence,
        title=natural_name(title) if title else "",
        due=due,
        priority=priority,
        project=project,
    )


def _add_with_title(
    words: Words, today: dt.date, now: dt.time | None, *, confidence: float
) -> Command:
    """Everything said is the title ("I want to buy milk", or the answer to "What's the task?")."""
    rest, due = cut_due(words, today=today, now=now)
    rest, project = cut_project(rest)
    rest, priority = cut_priority(rest)
    title = clean_title(rest)
    return Command(
        Intent.ADD_TASK,
        confidence,
        title=natural_name(title) if title else "",
        due=due,
        priority=priority,
        project=project,
    )


def title_answer(text: str, *, today: dt.date, now: dt.time | None = None) -> Command:
    """Read an utterance as the answer to "What's the task?" (the whole thing is the title)."""
    words, _ = strip_filler(Words.parse(text))
    return _add_with_title(words, today, now, confidence=0.7)
