"""The WER scorer the model tests rely on."""

from __future__ import annotations

import pytest

from voxdialog.testing.wer import normalize_words, word_error_rate


def test_normalising_ignores_case_punctuation_and_hyphens_but_keeps_apostrophes() -> None:
    assert normalize_words("Ask not -- what YOUR country's twenty-one!") == [
        "ask", "not", "what", "your", "country's", "twenty", "one",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("he could wait no longer", "He could wait no longer.", 0.0),
        ("he could wait no longer", "he could not wait no longer", 0.2),  # one insertion
        ("he could wait no longer", "he wait no longer", 0.2),  # one deletion
        ("he could wait no longer", "she could wait no longer", 0.2),  # one substitution
        ("one two", "three four five six", 2.0),  # insertions can push it past 1
        ("", "", 0.0),
        ("", "hello", 1.0),
        ("hello there", "", 1.0),
    ],
)
def test_word_error_rate_counts_edits_per_reference_word(
    reference: str, hypothesis: str, expected: float
) -> None:
    assert word_error_rate(reference, hypothesis) == pytest.approx(expected)


def test_numbers_under_a_hundred_compare_equal_to_their_words() -> None:
    assert word_error_rate("morning at nine", "morning at 9.") == 0.0
    assert word_error_rate("twenty-one days", "21 days") == 0.0
    assert word_error_rate("room 101", "room 101") == 0.0
    assert word_error_rate("at nine", "at 8") == 0.5
