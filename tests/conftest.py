"""Fixtures shared by every test suite."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Real recorded audio, read-only, outside the repository (see its README.md).
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@dataclass(frozen=True, slots=True)
class SpeechClip:
    """One row of ``speech/manifest.csv``: a 16 kHz mono PCM16 WAV and what is said in it."""

    path: Path
    transcript: str
    speaker: str
    corpus: str
    duration_s: float


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``/work/shared/data``); skips the test when it is absent."""
    if not (SHARED_DATA / "speech" / "manifest.csv").is_file():
        pytest.skip(f"shared audio data not found at {SHARED_DATA.resolve()}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def speech_manifest(shared_data: Path) -> dict[str, SpeechClip]:
    """Every recorded utterance, keyed by its path relative to ``speech/`` (``misc/jfk.wav``)."""
    with (shared_data / "speech" / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {
        row["path"].removeprefix("speech/"): SpeechClip(
            path=shared_data / row["path"],
            transcript=row["transcript"],
            speaker=row["speaker"],
            corpus=row["corpus"],
            duration_s=float(row["duration_s"]),
        )
        for row in rows
    }
