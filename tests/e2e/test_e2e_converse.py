"""``voxdialog converse`` as a user runs it: a WAV in, a spoken WAV answer out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SpeechClip
from voxdialog.audio.wav import read_wav
from voxdialog.db.engine import Database
from voxdialog.db.migrate import migrate
from voxdialog.db.repos.accounts import ensure_local_admin
from voxdialog.db.repos.agents import AgentFields, create_agent
from voxdialog.settings import Settings

pytestmark = [pytest.mark.models, pytest.mark.slow]


def voxdialog(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxdialog", *args, "--data-dir", str(data_dir)]
        if args[0] in ("converse",)
        else [sys.executable, "-m", "voxdialog", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_say_then_converse_adds_a_task_and_answers_aloud(tmp_path: Path) -> None:
    question = tmp_path / "question.wav"
    said = voxdialog(
        "say",
        "Add a task to book the car service on Monday.",
        "--out",
        str(question),
        data_dir=tmp_path,
    )
    assert said.returncode == 0, said.stderr
    answer = tmp_path / "answer.wav"
    run = voxdialog("converse", str(question), "--out", str(answer), data_dir=tmp_path / "d")
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(":", 1) for line in run.stdout.splitlines() if ":" in line)
    assert "car service" in lines["heard"].lower()
    assert "car service" in lines["said"].lower()
    assert "end_of_speech_to_first_audio_ms=" in lines["timings (ms)"]
    audio = read_wav(answer.read_bytes())
    assert audio.duration_ms > 700
    # The task is stored: a second turn from the same data dir lists it.
    ask = tmp_path / "ask.wav"
    assert (
        voxdialog("say", "What are my tasks?", "--out", str(ask), data_dir=tmp_path).returncode == 0
    )
    second = voxdialog(
        "converse", str(ask), "--out", str(tmp_path / "a2.wav"), data_dir=tmp_path / "d"
    )
    assert second.returncode == 0, second.stderr
    assert "car service" in second.stdout.lower()


def test_transcribe_prints_what_a_recording_says(
    speech_manifest: dict[str, SpeechClip], tmp_path: Path
) -> None:
    clip = speech_manifest["librispeech_test_clean/1089-134691-0000.wav"]
    run = voxdialog("transcribe", str(clip.path), data_dir=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "wait no longer" in run.stdout.lower()


def test_converse_reports_a_missing_file_clearly(tmp_path: Path) -> None:
    run = voxdialog(
        "converse", str(tmp_path / "nope.wav"), "--out", str(tmp_path / "o.wav"), data_dir=tmp_path
    )
    assert run.returncode == 2
    assert "nope.wav" in run.stderr


async def _local_agent(data_dir: Path, **fields: object) -> None:
    """Store an agent for the local administrator of ``data_dir`` (as the API would)."""
    settings = Settings(data_dir=data_dir)
    await migrate(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    try:
        admin = await ensure_local_admin(db)
        await create_agent(db, admin.scope, AgentFields(**fields))
    finally:
        await db.close()


def test_converse_answers_as_the_named_agent(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    asyncio.run(_local_agent(data_dir, name="Reader", tools=["list_tasks"]))
    question = tmp_path / "question.wav"
    said = voxdialog("say", "Add a task to buy bread.", "--out", str(question), data_dir=tmp_path)
    assert said.returncode == 0, said.stderr
    out = str(tmp_path / "answer.wav")
    run = voxdialog("converse", str(question), "--out", out, "--agent", "reader", data_dir=data_dir)
    assert run.returncode == 0, run.stderr
    assert "not set up" in run.stdout
    unknown = voxdialog(
        "converse", str(question), "--out", out, "--agent", "nobody", data_dir=data_dir
    )
    assert unknown.returncode == 2
    assert "no agent named 'nobody'" in unknown.stderr
