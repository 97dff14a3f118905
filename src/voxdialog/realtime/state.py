"""The state of one Realtime connection that client commands read and change.

Commands receive this object (never the connection itself): the session object the client
sees, the agent it speaks as, the input decoder for its audio format, and the pipeline
session. Switching agents goes through the two callables the connection provides.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from voxdialog.agents.stages import AgentStages
from voxdialog.audio.formats import WireFormat
from voxdialog.audio.wire import InputDecoder
from voxdialog.observability.metrics import (
    AUDIO_FRAMES_DROPPED,
    AUDIO_FRAMES_IN,
    DROP_INVALID_AUDIO,
)
from voxdialog.pipeline.session import VoiceSession
from voxdialog.realtime.errors import CommandError
from voxdialog.realtime.render import ResponseRenderer
from voxdialog.realtime.session_object import input_format, output_format

#: Finds the agent a ``session.voxdialog.agent`` names, if the session may switch to it.
ChooseAgent = Callable[[str], Awaitable[AgentStages]]
#: Makes the session speak and listen as the agent from now on.
BindAgent = Callable[[AgentStages], Awaitable[None]]


@dataclass(slots=True)
class RealtimeState:
    """What a connection's commands work on.

    Attributes:
        session: The effective session object (GA shape), as ``session.updated`` shows it.
        agent: The agent the session speaks as.
        voice: The pipeline session.
        renderer: Turns pipeline events into server events (knows the output format).
        decoder: Decodes appended audio from the input format to pipeline PCM.
        choose_agent: See ``ChooseAgent``.
        bind_agent: See ``BindAgent``.
    """

    session: dict[str, Any]
    agent: AgentStages
    voice: VoiceSession
    renderer: ResponseRenderer
    decoder: InputDecoder
    choose_agent: ChooseAgent
    bind_agent: BindAgent

    def decode_audio(self, audio_b64: str) -> bytes:
        """An append's audio as pipeline PCM; raises CommandError if it is not base64."""
        try:
            raw = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError) as e:
            AUDIO_FRAMES_DROPPED.labels(DROP_INVALID_AUDIO).inc()
            raise CommandError("invalid_value", "audio is not valid base64.", param="audio") from e
        AUDIO_FRAMES_IN.inc()
        return self.decoder.decode(raw)

    def replace_session(self, session: dict[str, Any]) -> None:
        """Take an updated session object: a new input format gets a new decoder."""
        if input_format(session) != input_format(self.session):
            self.decoder = InputDecoder(input_format(session))
        self.session = session
        output = session["audio"].get("output", {})
        self.renderer.output_format = output.get("format", self.renderer.output_format)
        self.renderer.voice = output.get("voice")

    @property
    def output_format(self) -> WireFormat:
        """The output audio format."""
        return output_format(self.session)
