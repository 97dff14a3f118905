"""A conversation's title is its opening user line, cut to 80 characters."""

from __future__ import annotations

from voxdialog.api.app_schemas import TITLE_CHARS, conversation_title


def test_the_title_is_the_first_non_blank_line() -> None:
    assert conversation_title("\n  \n  Add a task to buy milk  \nand eggs") == (
        "Add a task to buy milk"
    )


def test_a_long_line_is_cut_to_80_characters_with_an_ellipsis() -> None:
    title = conversation_title("word " * 40)
    assert title is not None
    assert len(title) == TITLE_CHARS == 80
    assert title.endswith("…")
    assert title.startswith("word word")


def test_a_line_of_exactly_80_characters_is_kept_whole() -> None:
    line = "x" * 80
    assert conversation_title(line) == line


def test_no_opening_line_means_no_title() -> None:
    assert conversation_title(None) is None
    assert conversation_title("   \n ") is None
