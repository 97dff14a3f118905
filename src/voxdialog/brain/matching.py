"""Fuzzy matching of a heard task title against the stored ones, robust to recognition errors."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from voxdialog.brain.tasks import TaskRecord
from voxdialog.brain.words import UNIT_VALUES

ACT_AT = 82.0
"""At or above this score (and clearly ahead of the next task) the assistant acts at once."""
ASK_AT = 62.0
"""From here up to ``ACT_AT`` the assistant asks "Did you mean ...?"; below, nothing matched."""
MARGIN = 6.0
"""How far the best task must lead the next one to act without asking."""

# Words that carry no identity in a title, and that Whisper drops, adds or swaps freely
# ("water to plant" for "water the plants", "book of flight" for "book a flight").
_STOPWORDS = frozenset(
    ("a", "an", "the", "my", "to", "too", "of", "some", "our", "your", "this", "that", "please")
)
_DIGITS = {word: str(value) for word, value in UNIT_VALUES.items()}
_PHONETIC = (
    ("ph", "f"), ("ck", "k"), ("gh", ""), ("kn", "n"), ("wr", "r"), ("sch", "sk"), ("th", "t"),
    ("sh", "s"), ("ch", "k"), ("qu", "kw"), ("x", "ks"), ("z", "s"), ("c", "k"), ("q", "k"),
    ("v", "f"), ("d", "t"), ("b", "p"), ("g", "k"),
)  # fmt: skip


class Verdict(enum.StrEnum):
    """What to do with the best match."""

    ACT = "act"
    ASK = "ask"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored task and how well the heard title matches it (0..100)."""

    task: TaskRecord
    score: float


@dataclass(frozen=True, slots=True)
class Match:
    """The ranked candidates and the verdict for the best one."""

    verdict: Verdict
    ranked: tuple[Candidate, ...]

    @property
    def best(self) -> Candidate | None:
        """The best candidate, if there is any task at all."""
        return self.ranked[0] if self.ranked else None


def _stem(word: str) -> str:
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


def normalise(title: str) -> str:
    """Lower case, no punctuation, no articles, digits for number words, crude stems."""
    lowered = re.sub(r"[^a-z0-9 ]", "", title.lower().replace("-", " "))
    tokens = [_DIGITS.get(t, t) for t in lowered.split() if t not in _STOPWORDS]
    return " ".join(_stem(t) for t in tokens)


def _sound(word: str) -> str:
    """A rough sound key: merged voicing and spellings, vowels dropped after the first letter."""
    for spelling, sound in _PHONETIC:
        word = word.replace(spelling, sound)
    if not word:
        return word
    tail = re.sub(r"[aeiouyhw]", "", word[1:])
    return re.sub(r"(.)\1+", r"\1", word[0] + tail)


def title_score(heard: str, title: str) -> float:
    """How well a heard title matches a stored one, 0..100.

    Blends token-set and whole-string similarity (word order and dropped words), a
    space-free comparison (Whisper splits and joins words: "for new" / "renew"), and a sound
    key (homophones: "by milk" / "buy milk").
    """
    q, t = normalise(heard), normalise(title)
    if not q or not t:
        return 0.0
    if q == t:
        return 100.0
    token_set = fuzz.token_set_ratio(q, t)
    token_sort = fuzz.token_sort_ratio(q, t)
    compact = fuzz.ratio(q.replace(" ", ""), t.replace(" ", ""))
    weighted = fuzz.WRatio(q, t)
    partial = fuzz.partial_ratio(q, t) if min(len(q), len(t)) >= 4 else token_sort
    sounds_q = " ".join(_sound(w) for w in q.split())
    sounds_t = " ".join(_sound(w) for w in t.split())
    sound = fuzz.token_sort_ratio(sounds_q, sounds_t)
    whole = max(token_sort, compact)
    score = 0.35 * token_set + 0.3 * whole + 0.1 * weighted + 0.1 * partial + 0.15 * sound
    return float(min(score, 99.0))  # only an exact (normalised) match scores 100


def match_task(
    queries: Sequence[str],
    tasks: Sequence[TaskRecord],
    *,
    act_at: float = ACT_AT,
    ask_at: float = ASK_AT,
    margin: float = MARGIN,
) -> Match:
    """Rank ``tasks`` by the best score over ``queries`` (alternative readings of one title).

    Returns ``Verdict.ACT`` when the best task scores at least ``act_at`` and leads the next
    one by ``margin``; ``Verdict.ASK`` when it scores at least ``ask_at`` (or leads too
    narrowly); otherwise ``Verdict.NONE``.
    """
    ranked = sorted(
        (Candidate(task, max(title_score(q, task.title) for q in queries)) for task in tasks),
        key=lambda c: c.score,
        reverse=True,
    )
    if not ranked or not queries:
        return Match(Verdict.NONE, tuple(ranked))
    best = ranked[0]
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    if best.score >= act_at and best.score - runner_up >= margin:
        verdict = Verdict.ACT
    elif best.score >= ask_at:
        verdict = Verdict.ASK
    else:
        verdict = Verdict.NONE
    return Match(verdict, tuple(ranked))
