"""A Realtime connection's state on fakes: no socket, no models."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from voxdialog.agents.stages import AgentStages, UnknownAgentError
from voxdialog.audio.wire import InputDecoder
from voxdialog.brain.assistant import TaskAssistant
from voxdialog.pipeline.events import SessionEvent
from voxdialog.pipeline.recorder import SessionInfo
from voxdialog.pipeline.session import VoiceSession
from voxdialog.realtime.errors import CommandError
from voxdialog.realtime.render import ResponseRenderer
from voxdialog.realtime.session_object import default_session, input_format, to_pipeline
from voxdialog.realtime.state import RealtimeState
from voxdialog.security.principal import Scope
from voxdialog.settings import TurnSettings
from voxdialog.testing.fakes import FakeSTT, FakeTTS, FakeVAD
from voxdialog.testing.tasks import MemoryTaskStore

SCOPE = Scope("t1", "u1")


def agent(
    name: str = "Default", *, voice: str | None = None, stt: FakeSTT | None = None
) -> AgentStages:
    """An agent on fakes: the built-in assistant over an in-memory task list."""
    return AgentStages(
        agent_id=f"agent_{name.lower()}",
        name=name,
        stt=stt or FakeSTT(["add milk to my list"]),
        tts=FakeTTS(),
        brain=TaskAssistant(MemoryTaskStore()),
        turns=TurnSettings(),
        voice=voice,
    )


@dataclass
class Edge:
    """A RealtimeState with what it emitted and which agents it may switch to."""

    state: RealtimeState
    events: list[SessionEvent] = field(default_factory=list)
    agents: dict[str, AgentStages] = field(default_factory=dict)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, kind: type, count: int = 1) -> None:
        async with asyncio.timeout(5):
            while len(self.of(kind)) < count:
                await asyncio.sleep(0.005)


def open_edge(*, kind: str = "realtime", first: AgentStages | None = None) -> Edge:
    """A state as a new connection has it (the caller runs ``state.voice.run()``)."""
    first = first or agent()
    session = default_session(
        session_id="sess_1", model="local-voice", turns=first.turns, expires_at=0, kind=kind
    )
    events: list[SessionEvent] = []

    async def emit(event: SessionEvent) -> None:
        events.append(event)

    voice = VoiceSession(
        info=SessionInfo("sess_1", SCOPE, "local-voice", agent=first.agent_id),
        config=to_pipeline(session, first.turns),
        vad=FakeVAD().open_stream(16_000),
        stt=first.stt,
        tts=first.tts,
        brain=first.brain.open_session(SCOPE),
        emit=emit,
    )
    edge: Edge

    async def choose(ref: str) -> AgentStages:
        if not edge.state.voice.is_fresh:
            raise CommandError("invalid_value", "too late", param="session.voxdialog.agent")
        try:
            return edge.agents[ref]
        except KeyError as e:
            raise UnknownAgentError(ref) from e

    async def bind(chosen: AgentStages) -> None:
        edge.state.agent = chosen

    state = RealtimeState(
        session=session,
        agent=first,
        voice=voice,
        renderer=ResponseRenderer(conversation_id="conv_1", output_format={}, voice=None),
        decoder=InputDecoder(input_format(session)),
        choose_agent=choose,
        bind_agent=bind,
    )
    edge = Edge(state, events)
    return edge


@pytest.fixture
async def edge() -> AsyncIterator[Edge]:
    """A running realtime session state on fakes."""
    opened = open_edge()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(opened.state.voice.run())
        yield opened
        opened.state.voice.close()


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()
