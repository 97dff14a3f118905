from voxdialog.pipeline.sentences import SentenceChunker


def chunk_all(deltas: list[str]) -> list[str]:
    chunker = SentenceChunker()
    out: list[str] = []
    for delta in deltas:
        out += chunker.push(delta)
    return out + chunker.flush()


def test_sentences_come_out_as_soon_as_they_end() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Done. I added ") == ["Done."]
    assert chunker.push("it for Friday. You") == ["I added it for Friday."]
    assert chunker.flush() == ["You"]


def test_abbreviations_and_decimals_do_not_end_a_sentence() -> None:
    text = "Dr. Smith said 3.5 tasks, e.g. this one, are due. Ok."
    assert chunk_all(list(text)) == ["Dr. Smith said 3.5 tasks, e.g. this one, are due.", "Ok."]


def test_a_long_first_sentence_is_cut_at_a_clause_for_fast_first_audio() -> None:
    text = "Here is everything on your list for the coming week, starting with the dentist"
    out = chunk_all([text, " and ending with groceries. Then more."])
    assert out[0] == "Here is everything on your list for the coming week,"
    assert out[-1] == "Then more."


def test_text_without_punctuation_is_cut_at_a_space_when_too_long() -> None:
    out = chunk_all(["word " * 100])
    assert all(len(piece) <= 240 for piece in out)
    assert " ".join(out).split() == ["word"] * 100


def test_question_and_exclamation_marks_end_sentences() -> None:
    assert chunk_all(["Really? Yes! Done"]) == ["Really?", "Yes!", "Done"]


def chunks(text: str, *, word_by_word: bool = False) -> list[str]:
    chunker = SentenceChunker()
    out: list[str] = []
    for delta in text.split(" ") if word_by_word else [text]:
        out += chunker.push(delta + " " if word_by_word else delta)
    return out + chunker.flush()


def test_a_long_first_sentence_without_commas_is_cut_at_a_phrase_boundary() -> None:
    # Piper speaks a sentence only once all of it is synthesised: the first words go first.
    question = "Should I add “call the dentist on Friday morning” to your list?"
    assert chunks(question) == [
        "Should I add",
        "“call the dentist on Friday morning” to your list?",
    ]
    assert chunks(question + " Yes.", word_by_word=True)[:2] == chunks(question)


def test_short_first_sentences_and_later_sentences_stay_whole() -> None:
    assert chunks("Okay, I have added that.") == ["Okay, I have added that."]
    long_second = "Done. Your list has buy milk and walk the dog and call the dentist on it."
    assert chunks(long_second) == [
        "Done.",
        "Your list has buy milk and walk the dog and call the dentist on it.",
    ]


def test_a_phrase_cut_leaves_whole_words_on_both_sides() -> None:
    for piece in chunks("You have three tasks: call the dentist, buy milk and walk the dog."):
        assert len(piece.split()) >= 3
