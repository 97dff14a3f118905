"""JSON logs carry the session, turn and response ids, and never what the user said."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from voxdialog.brain.assistant import TaskAssistant
from voxdialog.brain.llm_brain import LLMBrain
from voxdialog.observability.logging import bind_log_fields, log_context, make_log_handler
from voxdialog.pipeline.config import SessionConfig
from voxdialog.pipeline.events import (
    ResponseEnded,
    ResponseText,
    SessionEvent,
    TranscriptionCompleted,
    TranscriptionFailed,
)
from voxdialog.pipeline.recorder import SessionInfo
from voxdialog.pipeline.session import VoiceSession
from voxdialog.security.principal import Scope
from voxdialog.settings import AgentSettings
from voxdialog.testing.fake_llm import FakeLLM
from voxdialog.testing.fakes import FakeSTT, FakeTTS, FakeVAD
from voxdialog.testing.signals import silence, tone
from voxdialog.testing.tasks import MemoryTaskStore

CANARY = "quokka zanzibar"
log = logging.getLogger("tests.observability")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG and above during the test, as JSON lines."""
    stream = io.StringIO()
    handler = make_log_handler(stream, json_lines=True)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(stream: io.StringIO, logger: str | None = None) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if logger is None or line["logger"] == logger]


async def test_records_logged_in_a_labelled_task_carry_its_fields(
    json_lines: io.StringIO,
) -> None:
    async def turn() -> None:
        log.info("turn step")
        bind_log_fields(response_id="resp_1")
        log.info("reply step", extra={"turn_id": "explicit"})

    await asyncio.create_task(turn(), context=log_context(session_id="sess_1", turn_id="item_1"))
    log.info("outside")
    step, reply, outside = parsed(json_lines, log.name)
    assert step["msg"] == "turn step"
    assert (step["session_id"], step["turn_id"]) == ("sess_1", "item_1")
    assert "response_id" not in step
    assert reply["response_id"] == "resp_1"
    assert reply["turn_id"] == "explicit"  # an explicit extra= wins over the context
    assert {"session_id", "turn_id", "response_id"}.isdisjoint(outside)
    assert outside["level"] == "INFO"
    assert outside["logger"] == "tests.observability"


def test_fields_bound_to_none_are_left_out(json_lines: io.StringIO) -> None:
    log_context(session_id="sess_1", turn_id=None).run(log.warning, "no turn yet")
    (line,) = parsed(json_lines, log.name)
    assert line["session_id"] == "sess_1"
    assert "turn_id" not in line


async def test_session_logs_name_the_turn_and_never_contain_the_transcript(
    json_lines: io.StringIO,
) -> None:
    events: list[SessionEvent] = []

    async def emit(event: SessionEvent) -> None:
        events.append(event)

    store = MemoryTaskStore()
    # The model is down, so the LLM brain logs the failure and its fallback answers.
    brain = LLMBrain(
        FakeLLM(fail_first=5), store, settings=AgentSettings(), fallback=TaskAssistant(store)
    )
    session = VoiceSession(
        info=SessionInfo("sess_canary", Scope("t1", "u1"), "local-voice"),
        config=SessionConfig(transcribe_input=True, speculative_stt=False),
        vad=FakeVAD().open_stream(16_000),
        # The first turn's transcription fails (logged); the second is the canary command.
        stt=FakeSTT([f"add a task to feed the {CANARY}"], fail_first=1),
        tts=FakeTTS(),
        brain=brain.open_session(Scope("t1", "u1")),
        emit=emit,
    )
    async with asyncio.TaskGroup() as tg:
        tg.create_task(session.run())
        await session.append_audio(silence(300) + tone(600) + silence(900))
        await session.append_audio(tone(600) + silence(900))
        async with asyncio.timeout(5):
            while not any(isinstance(e, ResponseEnded) for e in events):
                await asyncio.sleep(0.005)
        session.close()

    heard = [e.transcript for e in events if isinstance(e, TranscriptionCompleted)]
    said = "".join(e.delta for e in events if isinstance(e, ResponseText))
    assert heard == [f"add a task to feed the {CANARY}"]
    assert CANARY in said.lower()  # the canary went all the way through the pipeline
    failed = next(e for e in events if isinstance(e, TranscriptionFailed))
    ended = next(e for e in events if isinstance(e, ResponseEnded))
    lines = parsed(json_lines)
    stt_line = next(line for line in lines if line["msg"] == "transcription failed")
    assert stt_line["session_id"] == "sess_canary"
    assert stt_line["turn_id"] == failed.item_id
    llm_line = next(line for line in lines if line["msg"] == "llm turn failed")
    assert llm_line["logger"] == "voxdialog.brain.llm_brain"  # knows nothing of sessions
    assert llm_line["session_id"] == "sess_canary"
    assert llm_line["response_id"] == ended.response_id
    assert llm_line["turn_id"] not in (None, failed.item_id)
    for word in CANARY.split():
        assert word not in json_lines.getvalue().lower()
