"""Long audio is cut into pieces at its quietest moments, each at most ``max_s`` long."""

from __future__ import annotations

import numpy as np
import pytest

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.local.pieces import split_at_pauses
from voxdialog.testing.signals import silence, tone

RATE = 16_000


def test_a_short_clip_is_one_piece() -> None:
    clip = AudioChunk(tone(2_000), RATE)
    assert split_at_pauses(clip, 30.0) == [(0.0, clip)]


def test_pieces_fit_cover_the_clip_and_are_cut_in_the_pauses() -> None:
    # 26 s of tone, 0.4 s pause, 26 s of tone, 0.4 s pause, 26 s of tone.
    pcm = tone(26_000) + silence(400) + tone(26_000) + silence(400) + tone(26_000)
    pieces = split_at_pauses(AudioChunk(pcm, RATE), 30.0)
    assert len(pieces) == 3
    assert b"".join(p.pcm for _, p in pieces) == pcm
    assert all(p.duration_ms <= 30_000 for _, p in pieces)
    starts = [start for start, _ in pieces]
    assert starts[0] == 0.0
    assert 26.0 <= starts[1] <= 26.4  # inside the first pause
    assert 52.4 <= starts[2] <= 52.8  # inside the second
    for start, piece in pieces[1:]:
        head = np.frombuffer(piece.pcm[:400], dtype="<i2")
        assert np.abs(head).max() == 0, f"the piece at {start} s starts mid-tone"


def test_without_pauses_pieces_still_fit() -> None:
    pcm = tone(70_000)
    pieces = split_at_pauses(AudioChunk(pcm, RATE), 30.0)
    assert b"".join(p.pcm for _, p in pieces) == pcm
    assert all(p.duration_ms <= 30_000 for _, p in pieces)


def test_the_longest_piece_must_leave_room_to_look_for_a_pause() -> None:
    with pytest.raises(ValueError, match="longer than"):
        split_at_pauses(AudioChunk(tone(1_000), RATE), 5.0)
