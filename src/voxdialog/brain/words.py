"""Words: a recognised utterance as tokens, each kept both as heard and normalised."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60}
_ORDINAL_UNITS = [
    "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
    "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
    "sixteenth", "seventeenth", "eighteenth", "nineteenth",
]  # fmt: skip
_ORDINAL_TENS = {"twentieth": 20, "thirtieth": 30}
# Whisper writes a spoken "two" as "to" or "too" (and "four" as "for") when it has no
# context; these are read as numbers only where a number is expected.
_LOOSE_NUMBERS = {"to": 2, "too": 2, "for": 4, "won": 1, "a": 1, "an": 1}

UNIT_VALUES: dict[str, int] = {w: i for i, w in enumerate(_UNITS)}
ORDINAL_VALUES: dict[str, int] = {w: i for i, w in enumerate(_ORDINAL_UNITS)} | _ORDINAL_TENS

_GLUED = [
    (re.compile(r"(?<![A-Za-z])([ap])\.\s?m\b\.?", re.IGNORECASE), r"\1m"),  # "p.m." -> "pm"
    (re.compile(r"(\d)\s*([ap]m)\b", re.IGNORECASE), r"\1 \2"),  # "3pm" -> "3 pm"
    (re.compile(r"\b(\d{1,2})\.(\d\d)\b"), r"\1:\2"),  # "7.30" -> "7:30"
    (re.compile(r"\bto-dos?\b", re.IGNORECASE), "todo"),
    (re.compile(r"\be-mail", re.IGNORECASE), "email"),
    (re.compile(r"(?<=[A-Za-z])-(?=[A-Za-z])"), " "),  # "twenty-five" -> "twenty five"
    (re.compile(r"&"), " and "),
    (re.compile(r"[,;!?\"“”()]"), " "),
]
_EDGE_PUNCT = ".,;:!?\"'“”‘’()[]{}-–—…"
_NON_WORD = re.compile(r"[^a-z0-9:]")


def _normalise_token(token: str) -> str:
    lowered = token.lower().replace("’", "").replace("'", "")
    return _NON_WORD.sub("", lowered).strip(":")


@dataclass(frozen=True, slots=True)
class Words:
    """Tokens of an utterance, as heard (``orig``) and normalised (``norm``).

    ``norm`` is lower case with punctuation and apostrophes removed ("What's" -> "whats"),
    ``orig`` keeps the recogniser's casing for titles ("Anna", "Berlin"). Pattern matching runs
    on ``text`` (the normalised tokens joined by single spaces) and maps back to token spans.
    """

    orig: tuple[str, ...]
    norm: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Words:
        """Split recognised text into tokens."""
        for pattern, replacement in _GLUED:
            text = pattern.sub(replacement, text)
        orig: list[str] = []
        norm: list[str] = []
        for raw in text.split():
            cleaned = raw.strip(_EDGE_PUNCT)
            key = _normalise_token(cleaned)
            if key:
                orig.append(cleaned)
                norm.append(key)
        return cls(tuple(orig), tuple(norm))

    @property
    def text(self) -> str:
        """The normalised tokens joined by spaces."""
        return " ".join(self.norm)

    def original(self) -> str:
        """The tokens as heard, joined by spaces."""
        return " ".join(self.orig)

    def __len__(self) -> int:
        return len(self.norm)

    def __bool__(self) -> bool:
        return bool(self.norm)

    def slice(self, start: int, end: int | None = None) -> Words:
        """Tokens ``start`` to ``end``."""
        return Words(self.orig[start:end], self.norm[start:end])

    def without(self, start: int, end: int) -> Words:
        """These words with tokens ``start`` to ``end`` removed."""
        return Words(self.orig[:start] + self.orig[end:], self.norm[:start] + self.norm[end:])

    def search(self, pattern: re.Pattern[str]) -> tuple[re.Match[str], int, int] | None:
        """The first match of a ``token_pattern`` and the token span it covers."""
        text = self.text
        for match in pattern.finditer(text):
            if match.end() > match.start():
                first = text.count(" ", 0, match.start())
                return match, first, first + match.group(0).count(" ") + 1
        return None

    def cut(self, pattern: re.Pattern[str]) -> tuple[Words, re.Match[str] | None]:
        """Remove the first token-aligned match of ``pattern``; return the rest and the match."""
        found = self.search(pattern)
        if found is None:
            return self, None
        match, first, last = found
        return self.without(first, last), match


def token_pattern(source: str) -> re.Pattern[str]:
    """Compile a pattern over ``Words.text`` that only matches whole tokens."""
    return re.compile(rf"(?<!\S)(?:{source})(?!\S)")


def longest_first(alternatives: str) -> str:
    """A group of ``|``-separated alternatives, longest first.

    Regex alternation takes the first alternative that fits, so "mark off X" would match
    "mark" and leave "off" in the title; longest first makes "mark off" win.
    """
    return "(?:" + "|".join(sorted(alternatives.split("|"), key=len, reverse=True)) + ")"


def repeated(alternatives: str) -> str:
    """A pattern for one or more of ``alternatives``, space separated ("um so please")."""
    return rf"(?:{alternatives})(?: (?:{alternatives}))*"


def number_value(phrase: str, *, loose: bool = False) -> int | None:
    """The value of a spoken cardinal number ("twenty five", "7", "to" when ``loose``)."""
    parts = phrase.split()
    if not parts:
        return None
    if len(parts) == 1:
        word = parts[0]
        if word.isdigit():
            return int(word)
        if word in UNIT_VALUES:
            return UNIT_VALUES[word]
        if word in _TENS:
            return _TENS[word]
        if loose and word in _LOOSE_NUMBERS:
            return _LOOSE_NUMBERS[word]
        return None
    if len(parts) == 2 and parts[0] in _TENS and parts[1] in UNIT_VALUES:
        unit = UNIT_VALUES[parts[1]]
        return _TENS[parts[0]] + unit if 0 < unit < 10 else None
    return None


def ordinal_value(phrase: str) -> int | None:
    """The value of a spoken ordinal ("third", "3rd", "twenty first")."""
    parts = phrase.split()
    if len(parts) == 1:
        word = parts[0]
        digits = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)", word)
        if digits:
            return int(digits.group(1))
        return ORDINAL_VALUES.get(word)
    if len(parts) == 2 and parts[0] in _TENS and parts[1] in ORDINAL_VALUES:
        unit = ORDINAL_VALUES[parts[1]]
        return _TENS[parts[0]] + unit if 0 < unit < 10 else None
    return None


def _alternation(words: list[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


_CARDINAL_WORDS = _UNITS + list(_TENS)
_ORDINAL_WORDS = _ORDINAL_UNITS[1:] + list(_ORDINAL_TENS)
CARDINAL = (
    rf"(?:(?:{_alternation(list(_TENS))}) (?:{_alternation(_UNITS[1:10])})|\d{{1,3}}"
    rf"|{_alternation(_CARDINAL_WORDS)})"
)
ORDINAL = (
    rf"(?:(?:{_alternation(list(_TENS))}) (?:{_alternation(_ORDINAL_UNITS[1:10])})"
    rf"|\d{{1,2}}(?:st|nd|rd|th)|{_alternation(_ORDINAL_WORDS)})"
)
"""Regex fragments for a spoken cardinal or ordinal number (match on ``Words.text``)."""


def number_words(n: int) -> str:
    """Say a small number in words ("three", "twenty one"); larger ones stay digits."""
    if 0 <= n < 20:
        return _UNITS[n]
    if 20 <= n < 70:
        tens = {v: k for k, v in _TENS.items()}[n - n % 10]
        return tens if n % 10 == 0 else f"{tens} {_UNITS[n % 10]}"
    return str(n)


def ordinal_words(n: int) -> str:
    """Say an ordinal in words ("first", "twenty third")."""
    if 0 < n < 20:
        return _ORDINAL_UNITS[n]
    if n in (20, 30):
        return "twentieth" if n == 20 else "thirtieth"
    if 20 < n < 40:
        return f"{number_words(n - n % 10)} {_ORDINAL_UNITS[n % 10]}"
    return f"{n}th"
