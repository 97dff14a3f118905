"""RealtimeConnection: one admitted socket and its pipeline session.

Three loops share the connection, each owned by its TaskGroup: the reader (client events ->
commands), the pipeline session (frames in, SessionEvents out -> rendered into the outbox,
bounded in bytes and seconds of audio) and the writer (outbox -> socket; a client that reads
nothing for ``ws_stall_close_s`` is closed). Watchers end the session when the sign-in is
revoked or the conversation is taken over by a reconnect. The reader holds each client to its
budgets (event size, control events per minute, audio per second: budget.py); every ending
the server chooses sends an ``error`` event, then a close frame with a code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, NoReturn, overload

from fastapi import WebSocket, WebSocketDisconnect

from voxdialog.agents.stages import AgentStages, UnknownAgentError
from voxdialog.audio.wire import InputDecoder
from voxdialog.observability.metrics import count_audio_sent, count_audio_unsent
from voxdialog.pipeline.events import ResponseAudio, ResponseEnded, SessionEvent
from voxdialog.pipeline.ids import new_id
from voxdialog.pipeline.recorder import SessionInfo
from voxdialog.pipeline.session import VoiceSession
from voxdialog.realtime.admission import Admission
from voxdialog.realtime.audio_out import OutputTracks
from voxdialog.realtime.budget import APPEND, InboundBudget, Overrun
from voxdialog.realtime.client_events import parse_client_event
from voxdialog.realtime.commands import apply
from voxdialog.realtime.errors import CommandError, error_event
from voxdialog.realtime.live_view import track
from voxdialog.realtime.outbox import Outbox, Outgoing
from voxdialog.realtime.render import ResponseRenderer
from voxdialog.realtime.session_object import default_session, input_format, to_pipeline
from voxdialog.realtime.state import RealtimeState
from voxdialog.runtime import Runtime

log = logging.getLogger(__name__)

# A greeting waits this long for the client's first session.update (its voice, format and
# agent), then is spoken anyway.
_GREETING_GRACE_S = 0.5
# How long the last words (an error event, a close frame) may take to reach a closing client.
_FAREWELL_S = 2.0
# Client input echoed in an error (an unknown type, an event id) is cut to this many characters.
_ECHO_CHARS = 120
_AUDIO_DELTA = "response.output_audio.delta"


class _SessionEnded(ConnectionError):
    """The server ended the session (sign-in revoked, conversation taken over)."""


class RealtimeConnection:
    """One accepted Realtime socket and its VoiceSession."""

    def __init__(self, ws: WebSocket, runtime: Runtime, admission: Admission) -> None:
        self.ws = ws
        self.runtime = runtime
        self.admission = admission
        self.limits = runtime.settings.limits
        self._taken_over = asyncio.Event()
        admission.live.take_over = self._taken_over.set
        self._shutting_down = asyncio.Event()
        admission.live.shut_down = self._shutting_down.set
        # A new conversation opens with the agent's greeting; a resumed one goes on quietly.
        self._greeting_due = admission.kind == "realtime" and not admission.resumed
        self._greeting_due = self._greeting_due and not admission.prior
        self._outbox = Outbox(
            max_bytes=self.limits.ws_outbox_bytes, max_audio_s=self.limits.ws_outbox_audio_s
        )
        self._budget = InboundBudget(self.limits)
        self._writer: asyncio.Task[None] | None = None
        self._dead = False
        #: When the client last sent anything (the idle timeout counts from it).
        self._last_heard = time.monotonic()
        self._tracks = OutputTracks()
        self.state = _open_state(
            admission,
            runtime,
            emit=self._on_event,
            choose_agent=self._choose_agent,
            bind_agent=self._bind_agent,
        )

    async def send(self, event: dict[str, Any], *, audio_s: float = 0.0) -> None:
        """Queue a server event (waits when the client reads slowly: backpressure).

        Args:
            event: The event (an ``event_id`` is added if it has none).
            audio_s: Seconds of reply audio it carries (the outbox holds at most a few).
        """
        if self._dead or self._outbox.closed:
            count_audio_unsent(event)
            return
        # event_id first, as the hosted service sends it.
        out = {"event_id": event.pop("event_id", None) or new_id("event"), **event}
        if not await self._outbox.put(Outgoing(json.dumps(out), str(out["type"]), audio_s)):
            count_audio_unsent(out)

    async def serve(self) -> None:
        """Run until the client leaves, the session expires or it idles out."""
        voice = self.state.voice
        await self.send({"type": "session.created", "session": self.state.session})
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(voice.run())
                self._writer = writer = tg.create_task(self._write())
                watchers = [
                    tg.create_task(self._watch_access()),
                    tg.create_task(self._watch_takeover()),
                    tg.create_task(self._watch_shutdown()),
                    tg.create_task(self._watch_time()),
                    tg.create_task(self._greet(after_s=_GREETING_GRACE_S)),
                ]
                try:
                    await self._read()
                finally:
                    for watcher in watchers:
                        watcher.cancel()
                    voice.close()
                    self._outbox.close()  # the writer sends what is queued, then ends
                    with contextlib.suppress(asyncio.CancelledError):
                        await writer
        except* (WebSocketDisconnect, ConnectionError):
            pass

    # --- the agent ------------------------------------------------------------------------

    async def _choose_agent(self, ref: str) -> AgentStages:
        if not self.state.voice.is_fresh:
            raise CommandError(
                "invalid_value",
                "The agent can only be chosen before the conversation starts.",
                param="session.voxdialog.agent",
            )
        try:
            return await self.runtime.agent_for(self.admission.principal.scope, ref)
        except UnknownAgentError as e:
            raise CommandError(
                "agent_not_found", "No such agent.", param="session.voxdialog.agent"
            ) from e

    async def _bind_agent(self, agent: AgentStages) -> None:
        state, live = self.state, self.admission.live
        state.agent = agent
        live.agent, live.agent_name = agent.agent_id, agent.name
        info = replace(state.voice.info, agent=agent.agent_id)
        brain = agent.brain.open_session(info.scope)
        await state.voice.rebind(stt=agent.stt, tts=agent.tts, brain=brain, info=info)

    async def _greet(self, *, after_s: float = 0.0) -> None:
        """Say the agent's greeting once, if nothing has been said or asked yet."""
        if after_s:
            await asyncio.sleep(after_s)
        if not self._greeting_due:
            return
        self._greeting_due = False
        if self.state.agent.greeting:
            await self.state.voice.greet(self.state.agent.greeting)

    # --- watchers -------------------------------------------------------------------------

    async def _watch_access(self) -> None:
        # Logout, a revoked sign-in or a disabled account ends the socket within one period.
        auth = self.runtime.auth
        if auth is None or not self.runtime.settings.auth_required:
            return
        period = self.runtime.settings.auth.session_check_s
        while True:
            await asyncio.sleep(period)
            if not await auth.still_valid(self.admission.principal):
                await self._end_with(
                    "session_revoked", "Your sign-in ended; reconnect to go on.", 1008
                )

    async def _watch_takeover(self) -> None:
        # A reconnect of the same user continues this conversation on its own socket.
        await self._taken_over.wait()
        await self._end_with(
            "session_taken_over", "This conversation continues on another connection.", 4009
        )

    async def _watch_shutdown(self) -> None:
        # Asked once the replies in progress are done (LiveSessions.drain): 1001, going away.
        await self._shutting_down.wait()
        message = "The server is restarting; reconnect shortly."
        await self._end_with("server_shutting_down", message, 1001)

    async def _end_with(self, code: str, message: str, close_code: int) -> NoReturn:
        """Tell the client why, let the writer deliver it, close the socket, end the session.

        Raising ends the reader too, even when the peer is gone without a word (a half-open
        socket would otherwise keep it waiting until the idle timeout). A client that reads
        nothing gets neither word nor frame, and is let go after ``_FAREWELL_S``.
        """
        log.info("realtime session ended by the server", extra={"code": code})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FAREWELL_S):
                await self.send(error_event(code, message))
                self._outbox.close()
                if self._writer is not None:
                    await asyncio.wait({self._writer})
        self._outbox.close()
        self._dead = True
        await self._close(close_code, code)
        raise _SessionEnded(code)

    async def _close(self, code: int, reason: str) -> None:
        """Send a close frame, unless the peer cannot take one (gone, or reading nothing)."""
        with contextlib.suppress(RuntimeError, ConnectionError, WebSocketDisconnect, TimeoutError):
            async with asyncio.timeout(_FAREWELL_S):
                await self.ws.close(code=code, reason=reason)

    # --- client -> server -----------------------------------------------------------------

    async def _read(self) -> None:
        # No timeout per message (an asyncio.timeout for each of 50 frames a second per session
        # was a tenth of the read path): _watch_time ends an idle or expired session instead.
        while True:
            message = await self.ws.receive()
            self._last_heard = time.monotonic()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self._charge(self._budget.control())
                await self.send(
                    error_event("invalid_event", "Binary frames are not supported; send JSON text.")
                )
                continue
            await self._handle_text(text)

    async def _watch_time(self) -> None:
        # The session's maximum duration, and the idle timeout since the client's last event.
        deadline = time.monotonic() + self.limits.max_session_s
        idle_s = self.limits.idle_timeout_s
        while True:
            now = time.monotonic()
            if now >= deadline:
                await self._end_with(
                    "session_expired", "Your session hit the maximum duration.", 1000
                )
            if now - self._last_heard >= idle_s:
                await self._end_with(
                    "session_idle_timeout", f"No events for {int(idle_s)} seconds; closing.", 1000
                )
            await asyncio.sleep(max(0.01, min(deadline, self._last_heard + idle_s) - now))

    async def _handle_text(self, text: str) -> None:
        limit = self.limits.ws_max_message_bytes
        if len(text) > limit:
            await self._charge(self._budget.control())  # not parsed: size not held against it
            await self.send(
                error_event("message_too_large", f"Event is larger than the {limit} byte limit.")
            )
            return
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            await self._charge(self._budget.control(len(text)))
            await self.send(error_event("invalid_json", "The event is not valid JSON."))
            return
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            await self._charge(self._budget.control(len(text)))
            await self.send(
                error_event(
                    "invalid_event", "An event must be an object with a type.", param="type"
                )
            )
            return
        if raw["type"] == APPEND:
            bytes_per_ms = input_format(self.state.session).bytes_per_ms
            await self._charge(self._budget.audio(raw.get("audio"), bytes_per_ms))
        else:
            await self._charge(self._budget.control(len(text)))
        event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
        try:
            for out in await apply(self.state, parse_client_event(raw)):
                await self.send(out)
        except CommandError as e:
            await self.send(
                error_event(e.code, _clip(str(e)), param=_clip(e.param), event_id=_clip(event_id))
            )
        if raw["type"] == "session.update":
            # The client has set its voice, format and agent: the greeting can use them.
            await self._greet()

    async def _charge(self, overrun: Overrun | None) -> None:
        """End the session of a client over one of its budgets."""
        if overrun is not None:
            await self._end_with(overrun.code, overrun.message, overrun.close_code)

    # --- server -> client -----------------------------------------------------------------

    async def _on_event(self, event: SessionEvent) -> None:
        if track(self.admission.live, event):
            self.runtime.sessions.publish(self.admission.live)
        renderer = self.state.renderer
        if isinstance(event, ResponseAudio):
            rid, item_id = event.response_id, event.item_id
            fmt = self.state.output_format
            for piece in self._tracks.deltas(rid, event.chunk, fmt):
                seconds = len(piece) / fmt.bytes_per_ms / 1000.0
                for out in renderer.audio_delta(rid, item_id, piece):
                    await self.send(out, audio_s=seconds if out["type"] == _AUDIO_DELTA else 0.0)
            return
        if isinstance(event, ResponseEnded):
            tail = self._tracks.close(event.response_id)
            if tail and event.status == "completed":
                # The resampler holds back a few ms; release them before the done events.
                for out in renderer.audio_delta(event.response_id, event.item.id, tail):
                    await self.send(out)
        for out in renderer.render(event):
            await self.send(out)

    async def _write(self) -> None:
        stall_s = self.limits.ws_stall_close_s
        while (item := await self._outbox.get()) is not None:
            try:
                # uvicorn's send waits while the socket's buffer is full: a client that reads
                # nothing keeps it waiting. Past the limit it is let go, so its queue, session
                # and memory are freed instead of held for as long as it keeps the socket.
                async with asyncio.timeout(stall_s):
                    await self.ws.send_text(item.text)
            except TimeoutError:
                self._gone(item)
                log.warning("realtime client read nothing for %g s; closing it", stall_s)
                await self._close(1008, "slow_reader")
                raise _SessionEnded("slow_reader") from None
            except (WebSocketDisconnect, RuntimeError, ConnectionError):
                self._gone(item)  # the client is gone: producers must not block on it
                return
            count_audio_sent({"type": item.type})

    def _gone(self, unsent: Outgoing) -> None:
        self._dead = True
        for item in (unsent, *self._outbox.discard()):
            count_audio_unsent({"type": item.type})


def _open_state(
    admission: Admission,
    runtime: Runtime,
    *,
    emit: Callable[[SessionEvent], Awaitable[None]],
    choose_agent: Callable[[str], Awaitable[AgentStages]],
    bind_agent: Callable[[AgentStages], Awaitable[None]],
) -> RealtimeState:
    """A new connection's state: its session object, renderer and pipeline session."""
    agent, limits = admission.agent, runtime.settings.limits
    session = default_session(
        session_id=admission.session_id,
        model=admission.model,
        turns=agent.turns,
        expires_at=int(time.time() + limits.max_session_s),
        kind=admission.kind,
        voice=agent.voice,
    )
    output = session["audio"].get("output", {})
    renderer = ResponseRenderer(
        conversation_id=new_id("conv"),
        output_format=output.get("format", {"type": "audio/pcm", "rate": 24000}),
        voice=output.get("voice"),
    )
    if runtime.vad is None:
        raise RuntimeError("models are not loaded")
    scope = admission.principal.scope
    info = SessionInfo(
        session_id=admission.session_id,
        scope=scope,
        model=admission.model,
        agent=agent.agent_id,
    )
    voice = VoiceSession(
        info=info,
        config=to_pipeline(session, agent.turns),
        vad=runtime.vad.open_stream(16_000),
        stt=agent.stt,
        tts=agent.tts,
        brain=agent.brain.open_session(scope),
        emit=emit,
        recorder=runtime.recorder,
        prior=admission.prior,
        max_items=limits.max_conversation_items,
        scorer=runtime.frame_scorer,
    )
    return RealtimeState(
        session=session,
        agent=agent,
        voice=voice,
        renderer=renderer,
        decoder=InputDecoder(input_format(session)),
        choose_agent=choose_agent,
        bind_agent=bind_agent,
    )


@overload
def _clip(value: str) -> str: ...
@overload
def _clip(value: str | None) -> str | None: ...
def _clip(value: str | None) -> str | None:
    """Client input as an error may echo it: a short prefix at most."""
    if value is None or len(value) <= _ECHO_CHARS:
        return value
    return value[:_ECHO_CHARS] + "…"
