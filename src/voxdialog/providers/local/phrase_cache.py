"""PhraseCache: the audio of short, often-said lines, kept so they are spoken at once.

The built-in assistant opens most answers with the same few words ("Done.", "Sorry, I didn't
catch that."). Synthesized once, they come back from memory afterwards: the first audio of
such a reply is out before the model would have finished. Bounded by bytes, least recently
used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence

from voxdialog.audio.formats import AudioChunk

#: Lines longer than this are rarely repeated word for word: not worth their memory.
MAX_PHRASE_CHARS = 60


class PhraseCache:
    """Audio chunks by key, at most ``max_bytes`` of PCM in all."""

    def __init__(self, *, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[AudioChunk, ...]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> tuple[AudioChunk, ...] | None:
        """The audio stored for ``key``, if any (it becomes the most recently used)."""
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found

    def put(self, key: Hashable, chunks: Sequence[AudioChunk]) -> None:
        """Keep ``chunks`` for ``key``, forgetting the least recently used to make room."""
        size = sum(len(chunk.pcm) for chunk in chunks)
        if size > self._max_bytes or key in self._entries:
            return
        self._entries[key] = tuple(chunks)
        self._bytes += size
        while self._bytes > self._max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= sum(len(chunk.pcm) for chunk in dropped)

    def __len__(self) -> int:
        return len(self._entries)
