"""Word error rate with the light text normalisation used to score transcripts in tests."""

from __future__ import annotations

import re

_NOT_WORD = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _spelled(word: str) -> list[str]:
    """A whole number under 100 as words ("9" -> nine, "21" -> twenty one); others as they are."""
    if not word.isdigit() or len(word) > 2:
        return [word]
    number = int(word)
    if number < 20:
        return [_ONES[number]]
    tens, ones = divmod(number, 10)
    return [_TENS[tens]] + ([_ONES[ones]] if ones else [])


def normalize_words(text: str) -> list[str]:
    """Lower-case, drop punctuation (apostrophes inside words stay), split on whitespace.

    Hyphens split words, so "twenty-one" and "twenty one" compare equal, and numbers under a
    hundred are spelled out: Whisper writes "at 9" where the reference says "at nine".
    """
    words = _NOT_WORD.sub(" ", text.lower().replace("-", " ")).split()
    return [spelled for word in words for spelled in _spelled(word)]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after ``normalize_words``.

    An empty reference scores 0.0 against an empty hypothesis and 1.0 against anything else.
    """
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution or match
                )
            )
        previous = current
    return previous[-1] / len(ref)
