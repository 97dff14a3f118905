"""SentenceChunker: streamed text deltas in, speakable sentences out."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (or an ellipsis) followed by whitespace, unless the word before the
# period is a common abbreviation or a single letter ("e.g.", "Dr.", "U.S.").
_END = re.compile(r"([.!?…]+[\"'”’)\]]*)(\s+)")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "no"}
)
_CLAUSE = re.compile(r"([,;:—–])\s+")
# Inside a long first sentence with no clause mark: a cut before an opening quote or before a
# word that starts a phrase ("Should I add | “call the dentist” to your list?").
_PHRASE = re.compile(
    r"\s+(?=[“\"‘(]|(?:and|but|or|because|so|to|for|with|on|in|at|from|about|when|that)\s)",
    re.IGNORECASE,
)
#: The first sentence is cut at a phrase boundary only when longer than this (characters) ...
_LONG_FIRST = 48
#: ... and the first piece keeps at least this many words, the rest at least as many.
_PHRASE_MIN_WORDS = 3


class SentenceChunker:
    """Splits a stream of text into sentences for text-to-speech.

    The first chunk of a reply may be cut early at a clause boundary once it is long enough,
    and a long first sentence at a clause mark or phrase boundary, because the listener hears
    nothing until the first chunk has been synthesized (Piper speaks a 13-word question only
    once all of it is ready).

    Args:
        first_clause_min_chars: Cut the first chunk at a comma once it is at least this long.
        max_chars: Force a cut (at the last space) when no sentence end comes this long.
    """

    def __init__(self, *, first_clause_min_chars: int = 40, max_chars: int = 240) -> None:
        self._buffer = ""
        self._first = True
        self._first_clause_min = first_clause_min_chars
        self._max = max_chars

    def push(self, delta: str) -> list[str]:
        """Add text; return the sentences it completed."""
        self._buffer += delta
        out: list[str] = []
        while (piece := self._next_piece()) is not None:
            if piece:
                out.append(piece)
        return out

    def flush(self) -> list[str]:
        """Return whatever text is left as a final chunk."""
        rest = self._buffer.strip()
        self._buffer = ""
        if self._first and len(rest) > _LONG_FIRST and (early := self._phrase_cut(rest)):
            self._first = False
            return [rest[:early].strip(), rest[early:].strip()]
        return [rest] if rest else []

    def _next_piece(self) -> str | None:
        for match in _END.finditer(self._buffer):
            head = self._buffer[: match.start(1)]
            last_word = head.rsplit(None, 1)[-1].lower() if head.strip() else ""
            if last_word.rstrip(".") in _ABBREVIATIONS or (len(last_word) == 1 and match[1] == "."):
                continue
            if (
                match[1] == "."
                and head[-1:].isdigit()
                and self._buffer[match.end() :][:1].isdigit()
            ):
                continue
            if self._first and len(head) > _LONG_FIRST and (early := self._phrase_cut(head)):
                return self._cut(early, early)
            return self._cut(match.end(2), match.end(1))
        if self._first:
            clause = next(
                (m for m in _CLAUSE.finditer(self._buffer) if m.start() >= self._first_clause_min),
                None,
            )
            if clause is not None:
                return self._cut(clause.end(), clause.end(1))
        if len(self._buffer) > self._max:
            space = self._buffer.rfind(" ", 0, self._max)
            cut = space if space > 0 else self._max
            return self._cut(cut, cut)
        return None

    def _phrase_cut(self, sentence: str) -> int | None:
        """Where to cut a long first sentence so its first words are heard sooner, if anywhere.

        A clause mark (past ``first_clause_min_chars``) wins; else the first phrase boundary
        that leaves enough words on both sides.
        """
        for clause in _CLAUSE.finditer(sentence):
            if clause.start() >= self._first_clause_min:
                return clause.end(1)
        for phrase in _PHRASE.finditer(sentence):
            before, after = sentence[: phrase.start()], sentence[phrase.end() :]
            if len(before.split()) >= _PHRASE_MIN_WORDS and len(after.split()) >= _PHRASE_MIN_WORDS:
                return phrase.start()
        return None

    def _cut(self, consumed: int, keep: int) -> str:
        piece = self._buffer[:keep].strip()
        self._buffer = self._buffer[consumed:]
        self._first = False
        return piece
