"""PhraseCache keeps short lines' audio, least recently used out first, within its bytes."""

from __future__ import annotations

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.local.phrase_cache import PhraseCache


def audio(size: int) -> tuple[AudioChunk, ...]:
    return (AudioChunk(b"\x00" * size, 22_050),)


def test_a_line_said_before_comes_back() -> None:
    cache = PhraseCache()
    assert cache.get("Done.") is None
    cache.put("Done.", audio(100))
    assert cache.get("Done.") == audio(100)
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_least_recently_used_goes_first_when_full() -> None:
    cache = PhraseCache(max_bytes=300)
    cache.put("a", audio(100))
    cache.put("b", audio(100))
    cache.put("c", audio(100))
    assert cache.get("a") is not None  # now the most recently used
    cache.put("d", audio(100))
    assert cache.get("b") is None
    assert [key for key in "acd" if cache.get(key) is not None] == ["a", "c", "d"]


def test_audio_bigger_than_the_whole_cache_is_not_kept() -> None:
    cache = PhraseCache(max_bytes=50)
    cache.put("long", audio(100))
    assert len(cache) == 0
