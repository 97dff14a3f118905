"""The false-interruption guard on real recordings: coughs do not cut the agent off, speech does."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxdialog.pipeline.turns import SpeechStarted, TurnConfig, TurnDetector
from voxdialog.providers.local.silero_vad import SileroVAD
from voxdialog.testing.signals import load_wav_pcm16

pytestmark = pytest.mark.models

FRAME_BYTES = 1024  # 512 samples at 16 kHz


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


def interruptions(vad: SileroVAD, path: Path) -> int:
    """SpeechStarted events while the agent is audible, over one recording."""
    pcm = load_wav_pcm16(path).pcm
    stream = vad.open_stream(16_000)
    detector = TurnDetector(TurnConfig(), frame_ms=32, bytes_per_ms=32)
    detector.agent_audible = True
    count = 0
    for offset in range(0, len(pcm) - FRAME_BYTES, FRAME_BYTES):
        frame = pcm[offset : offset + FRAME_BYTES]
        events = detector.push(frame, stream.speech_probability(frame))
        count += sum(isinstance(e, SpeechStarted) for e in events)
    return count


@pytest.mark.parametrize("label", ["coughing", "door_knock", "keys_drop", "clapping"])
def test_short_non_speech_sounds_do_not_interrupt_the_agent(
    vad: SileroVAD, shared_data: Path, label: str
) -> None:
    clips = sorted((shared_data / "events" / label).glob("*.wav"))
    assert clips
    assert [interruptions(vad, clip) for clip in clips] == [0] * len(clips)


def test_real_speech_interrupts_the_agent(vad: SileroVAD, shared_data: Path) -> None:
    clips = sorted((shared_data / "speech" / "librispeech_test_clean").glob("*.wav"))
    assert all(interruptions(vad, clip) >= 1 for clip in clips)
