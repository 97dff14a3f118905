"""Whisper transcribes long uploads in pieces, and live turns go before the pieces left.

A 590 s upload once delayed another request's 5 s clip from 0.58 s to 23 s: the upload held
the one Whisper slot for its whole length.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import STTPriority
from voxdialog.testing.signals import load_wav_pcm16, silence
from voxdialog.testing.wer import word_error_rate

if TYPE_CHECKING:
    from conftest import SpeechClip
    from voxdialog.providers.local.whisper_stt import WhisperSTT

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def whisper() -> WhisperSTT:
    from voxdialog.providers.local.whisper_stt import WhisperSTT

    return WhisperSTT()


@pytest.fixture(scope="module")
def long_upload(speech_manifest: dict[str, SpeechClip]) -> tuple[AudioChunk, str]:
    """About 75 s of recorded speech: utterances with half a second between them."""
    pieces: list[bytes] = []
    words: list[str] = []
    total_s = 0.0
    for name, entry in sorted(speech_manifest.items()):
        if not name.startswith("librispeech_test_other/") or total_s > 75:
            continue
        clip = load_wav_pcm16(entry.path)
        assert clip.sample_rate == 16_000
        pieces += [clip.pcm, silence(500)]
        words.append(entry.transcript)
        total_s += entry.duration_s + 0.5
    return AudioChunk(b"".join(pieces), 16_000), " ".join(words)


async def test_a_long_upload_is_transcribed_whole_across_its_pieces(
    whisper: WhisperSTT, long_upload: tuple[AudioChunk, str]
) -> None:
    clip, reference = long_upload
    assert clip.duration_ms > 60_000  # at least three pieces
    transcript = await whisper.transcribe(clip, priority=STTPriority.UPLOAD)
    assert word_error_rate(reference, transcript.text) < 0.35
    starts = [segment.start for segment in transcript.segments]
    assert starts == sorted(starts)
    assert transcript.segments[-1].end > clip.duration_ms / 1000 - 10  # reaches the end


async def test_a_live_turn_goes_before_the_rest_of_an_upload(
    whisper: WhisperSTT,
    long_upload: tuple[AudioChunk, str],
    speech_manifest: dict[str, SpeechClip],
) -> None:
    clip, _ = long_upload
    turn = load_wav_pcm16(speech_manifest["librispeech_test_clean/1089-134691-0000.wav"].path)
    finished: list[str] = []

    async def run(name: str, audio: AudioChunk, priority: STTPriority) -> None:
        await whisper.transcribe(audio, priority=priority)
        finished.append(name)

    upload = asyncio.create_task(run("upload", clip, STTPriority.UPLOAD))
    while not whisper.busy:  # the upload's first piece holds the slot
        await asyncio.sleep(0.01)
    await run("turn", turn, STTPriority.LIVE)
    assert finished == ["turn"]  # the upload still has pieces to go
    await upload
    assert finished == ["turn", "upload"]
