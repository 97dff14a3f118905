"""The ``/v1/realtime`` WebSocket: auth at the handshake, then client events <-> VoiceSession."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NoReturn

from fastapi import WebSocket, WebSocketDisconnect

from voxdialog.agents.stages import AgentStages, UnknownAgentError
from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.wire import InputDecoder, OutputEncoder
from voxdialog.brain.base import HistoryMessage
from voxdialog.db.repos.sessions import get_session
from voxdialog.live import LiveSession, SessionBusy, TooManySessions
from voxdialog.observability.metrics import (
    AUDIO_FRAMES_DROPPED,
    AUDIO_FRAMES_IN,
    DROP_INVALID_AUDIO,
    count_audio_sent,
    count_audio_unsent,
)
from voxdialog.pipeline.events import (
    ResponseAudio,
    ResponseEnded,
    ResponseStarted,
    SessionEvent,
    SpeechStarted,
)
from voxdialog.pipeline.ids import new_id
from voxdialog.pipeline.recorder import SessionInfo
from voxdialog.pipeline.session import VoiceSession
from voxdialog.realtime.commands import CommandError, dispatch
from voxdialog.realtime.config import (
    default_session,
    input_format,
    output_format,
    to_pipeline,
)
from voxdialog.realtime.render import ResponseRenderer, error_event
from voxdialog.runtime import Runtime
from voxdialog.security.principal import Principal

log = logging.getLogger(__name__)

_OUTBOX_SIZE = 1024
_AUDIO_DELTA_MS = 500
# A client that cannot finish the handshake's auth in time is dropped (R12: <= 5 s).
_AUTH_DEADLINE_S = 5.0
# A greeting waits this long for the client's first session.update (its voice, format and
# agent), then is spoken anyway.
_GREETING_GRACE_S = 0.5
# How long a reconnect waits for the old connection of its conversation to wind down.
_TAKEOVER_S = 5.0


def _credential(ws: WebSocket) -> tuple[str | None, str | None]:
    """The bearer credential and the subprotocol to select.

    Browsers cannot set headers: they pass a ticket (or key) as the subprotocol
    ``openai-insecure-api-key.<credential>`` or as ``?ticket=`` / ``?token=``.
    """
    header = ws.headers.get("authorization", "")
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
    chosen = "realtime" if "realtime" in offered else None
    if header.lower().startswith("bearer "):
        return header[7:].strip(), chosen
    key = next(
        (
            p.removeprefix("openai-insecure-api-key.")
            for p in offered
            if p.startswith("openai-insecure-api-key.")
        ),
        None,
    )
    return key or ws.query_params.get("ticket") or ws.query_params.get("token"), chosen


def origin_allowed(ws: WebSocket, allowed: list[str]) -> bool:
    """Non-browser clients send no Origin; a browser's must be this server or allowlisted."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    if origin.rstrip("/") in (a.rstrip("/") for a in allowed):
        return True
    return origin.split("://", 1)[-1].rstrip("/") == ws.headers.get("host", "")


async def _principal(runtime: Runtime, credential: str | None) -> Principal | None:
    # A JWT here is usually a single-use ticket; an access token or API key also works.
    auth = runtime.auth if runtime.settings.auth_required else None
    if credential and auth is not None and credential.count(".") == 2:
        principal = await auth.redeem_ticket(credential)
        if principal is not None:
            return principal
    return await runtime.authenticate(credential)


async def _refuse(
    ws: WebSocket,
    subprotocol: str | None,
    code: str,
    message: str,
    close_code: int,
    error_type: str = "invalid_request_error",
) -> None:
    # Like the hosted service: complete the upgrade, send one error, then close.
    await ws.accept(subprotocol=subprotocol)
    event = error_event(code, message, type=error_type)
    event["event_id"] = new_id("event")
    await ws.send_text(json.dumps(event))
    await ws.close(code=close_code, reason=f"{error_type}.{code}"[:120])


async def realtime_endpoint(ws: WebSocket, runtime: Runtime) -> None:
    """Serve one Realtime connection: check origin and credential, bind user and agent."""
    if not origin_allowed(ws, runtime.settings.auth.allowed_origins):
        # Refused before the upgrade: the browser sees a failed handshake (HTTP 403).
        await ws.close(code=1008)
        return
    key, subprotocol = _credential(ws)
    async with asyncio.timeout(_AUTH_DEADLINE_S):
        principal = await _principal(runtime, key)
    if principal is None:
        await _refuse(
            ws,
            subprotocol,
            "invalid_api_key",
            "Incorrect API key provided." if key else "Missing bearer credential.",
            3000,
        )
        return
    if ws.headers.get("openai-beta", "").startswith("realtime=") or any(
        p.strip() == "openai-beta.realtime-v1"
        for p in ws.headers.get("sec-websocket-protocol", "").split(",")
    ):
        await _refuse(
            ws,
            subprotocol,
            "beta_api_shape_disabled",
            "The beta Realtime API shape is not supported; use the GA interface.",
            4000,
        )
        return
    if ws.query_params.get("call_id"):
        await _refuse(ws, subprotocol, "invalid_value", "call_id is not supported here.", 4000)
        return
    try:
        agent = await runtime.agent_for(
            principal.scope, ws.query_params.get("agent") or principal.agent
        )
    except UnknownAgentError:
        await _refuse(ws, subprotocol, "agent_not_found", "No such agent.", 4004)
        return
    kind = "transcription" if ws.query_params.get("intent") == "transcription" else "realtime"
    model = ws.query_params.get("model") or runtime.settings.model_name
    session_id = new_id("sess")
    prior: list[HistoryMessage] = []
    resumed = ws.query_params.get("conversation")
    if resumed:
        # A reconnect continues its conversation: same id, context from the cache or store.
        stored = await get_session(runtime.db, principal.scope, resumed)
        if stored is None:
            await _refuse(
                ws, subprotocol, "conversation_not_found", "No such conversation to resume.", 4004
            )
            return
        if not await runtime.sessions.take_over(
            resumed, principal.scope.user_id, timeout_s=_TAKEOVER_S
        ):
            await _refuse(
                ws, subprotocol, "conversation_busy", "This conversation is open elsewhere.", 4009
            )
            return
        session_id = resumed
        prior = await runtime.resume_context(principal.scope, resumed)
    live = LiveSession(
        session_id,
        principal.scope.tenant_id,
        principal.scope.user_id,
        agent.agent_id,
        "realtime",
        agent_name=agent.name,
    )
    try:
        runtime.sessions.add(live)
    except SessionBusy:
        await _refuse(
            ws, subprotocol, "conversation_busy", "This conversation is open elsewhere.", 4009
        )
        return
    except TooManySessions as exc:
        await _refuse(
            ws,
            subprotocol,
            "session_limit_reached",
            "You have too many open sessions."
            if exc.per_user
            else "Too many concurrent sessions; try again later.",
            1013,
            "server_error",
        )
        return
    try:
        await ws.accept(subprotocol=subprotocol)
        connection = RealtimeConnection(
            ws,
            runtime,
            session_id=session_id,
            kind=kind,
            model=model,
            scope_info=SessionInfo(
                session_id=session_id, scope=principal.scope, model=model, agent=agent.agent_id
            ),
            principal=principal,
            agent=agent,
            live=live,
            prior=prior,
            resumed=bool(resumed),
        )
        await connection.serve()
    finally:
        runtime.sessions.remove(session_id)


class _SessionEnded(ConnectionError):
    """The server ended the session (sign-in revoked, conversation taken over)."""


class RealtimeConnection:
    """One accepted Realtime socket and its VoiceSession."""

    def __init__(
        self,
        ws: WebSocket,
        runtime: Runtime,
        *,
        session_id: str,
        kind: str,
        model: str,
        scope_info: SessionInfo,
        principal: Principal,
        agent: AgentStages,
        live: LiveSession,
        prior: Sequence[HistoryMessage] = (),
        resumed: bool = False,
    ) -> None:
        self.ws = ws
        self.runtime = runtime
        self.principal = principal
        self.live = live
        self.agent = agent
        self._taken_over = asyncio.Event()
        live.take_over = self._taken_over.set
        # A new conversation opens with the agent's greeting; a resumed one goes on quietly.
        self._greeting_due = kind == "realtime" and not resumed and not prior
        settings = runtime.settings
        self.limits = settings.limits
        self.session = default_session(
            session_id=session_id,
            model=model,
            turns=agent.turns,
            expires_at=int(time.time() + self.limits.max_session_s),
            kind=kind,
            voice=agent.voice,
        )
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(_OUTBOX_SIZE)
        self._dead = False
        self.decoder = InputDecoder(input_format(self.session))
        self._encoders: dict[str, OutputEncoder] = {}
        self._delta_bytes: dict[str, int] = {}
        self.renderer = ResponseRenderer(
            conversation_id=new_id("conv"),
            output_format=self.session["audio"]
            .get("output", {})
            .get("format", {"type": "audio/pcm", "rate": 24000}),
            voice=self.session["audio"].get("output", {}).get("voice"),
        )
        if runtime.vad is None:
            raise RuntimeError("models are not loaded")
        self.voice = VoiceSession(
            info=scope_info,
            config=to_pipeline(self.session, agent.turns),
            vad=runtime.vad.open_stream(16_000),
            stt=agent.stt,
            tts=agent.tts,
            brain=agent.brain.open_session(scope_info.scope),
            emit=self._on_event,
            recorder=runtime.recorder,
            prior=prior,
            max_items=self.limits.max_conversation_items,
        )

    async def send(self, event: dict[str, Any]) -> None:
        """Queue a server event (waits when the client reads slowly: backpressure)."""
        if self._dead:
            count_audio_unsent(event)
            return
        event.setdefault("event_id", new_id("event"))
        # event_id first, as the hosted service sends it.
        await self._outbox.put({"event_id": event.pop("event_id"), **event})

    async def serve(self) -> None:
        """Run until the client leaves, the session expires or it idles out."""
        await self.send({"type": "session.created", "session": self.session})
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.voice.run())
                writer = tg.create_task(self._write())
                watcher = tg.create_task(self._watch_access(writer))
                handover = tg.create_task(self._watch_takeover(writer))
                greeter = tg.create_task(self._greet(after_s=_GREETING_GRACE_S))
                try:
                    await self._read()
                finally:
                    greeter.cancel()
                    self.voice.close()
                    if not self._dead:
                        await self._outbox.put(None)
                    watcher.cancel()
                    handover.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await writer
        except* (WebSocketDisconnect, ConnectionError):
            pass

    async def choose_agent(self, ref: str) -> AgentStages:
        """The agent ``ref`` names, if this session may still switch to it.

        Raises:
            CommandError: The conversation has begun, or no such agent is in the tenant.
        """
        if not self.voice.is_fresh:
            raise CommandError(
                "invalid_value",
                "The agent can only be chosen before the conversation starts.",
                param="session.voxdialog.agent",
            )
        try:
            return await self.runtime.agent_for(self.principal.scope, ref)
        except UnknownAgentError as e:
            raise CommandError(
                "agent_not_found", "No such agent.", param="session.voxdialog.agent"
            ) from e

    async def bind_agent(self, agent: AgentStages) -> None:
        """Speak and listen as ``agent`` from now on (``session.voxdialog.agent``)."""
        self.agent = agent
        self.live.agent = agent.agent_id
        self.live.agent_name = agent.name
        info = replace(self.voice.info, agent=agent.agent_id)
        await self.voice.rebind(
            stt=agent.stt, tts=agent.tts, brain=agent.brain.open_session(info.scope), info=info
        )

    async def _greet(self, *, after_s: float = 0.0) -> None:
        """Say the agent's greeting once, if nothing has been said or asked yet."""
        if after_s:
            await asyncio.sleep(after_s)
        if not self._greeting_due:
            return
        self._greeting_due = False
        if self.agent.greeting:
            await self.voice.greet(self.agent.greeting)

    async def _watch_access(self, writer: asyncio.Task[None]) -> None:
        # Logout, a revoked sign-in or a disabled account ends the socket within one period.
        auth = self.runtime.auth
        if auth is None or not self.runtime.settings.auth_required:
            return
        period = self.runtime.settings.auth.session_check_s
        while True:
            await asyncio.sleep(period)
            if not await auth.still_valid(self.principal):
                await self._end_with(
                    writer, "session_revoked", "Your sign-in ended; reconnect to go on.", 1008
                )

    async def _watch_takeover(self, writer: asyncio.Task[None]) -> None:
        # A reconnect of the same user continues this conversation on its own socket.
        await self._taken_over.wait()
        await self._end_with(
            writer, "session_taken_over", "This conversation continues on another connection.", 4009
        )

    async def _end_with(
        self, writer: asyncio.Task[None], code: str, message: str, close_code: int
    ) -> NoReturn:
        """Tell the client why, let the writer deliver it, close the socket, end the session.

        Raising ends the reader too, even when the peer is gone without a word (a half-open
        socket would otherwise keep it waiting until the idle timeout).
        """
        await self.send(error_event(code, message))
        await self._outbox.put(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(writer), 2.0)
        self._dead = True
        with contextlib.suppress(RuntimeError, ConnectionError):
            await self.ws.close(code=close_code, reason=code)
        raise _SessionEnded(code)

    async def _read(self) -> None:
        deadline = time.monotonic() + self.limits.max_session_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self.send(
                    error_event(
                        "session_expired",
                        "Your session hit the maximum duration.",
                        type="invalid_request_error",
                    )
                )
                return
            try:
                async with asyncio.timeout(min(remaining, self.limits.idle_timeout_s)):
                    message = await self.ws.receive()
            except TimeoutError:
                if deadline - time.monotonic() <= 0:
                    continue  # the session cap: reported at the top of the loop
                await self.send(
                    error_event(
                        "session_idle_timeout",
                        f"No events for {int(self.limits.idle_timeout_s)} seconds; closing.",
                    )
                )
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self.send(
                    error_event("invalid_event", "Binary frames are not supported; send JSON text.")
                )
                continue
            await self._handle_text(text)

    async def _handle_text(self, text: str) -> None:
        if len(text) > self.limits.ws_max_message_bytes:
            await self.send(
                error_event(
                    "message_too_large",
                    f"Event is larger than the {self.limits.ws_max_message_bytes} byte limit.",
                )
            )
            return
        try:
            event = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            await self.send(error_event("invalid_json", "The event is not valid JSON."))
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.send(
                error_event(
                    "invalid_event", "An event must be an object with a type.", param="type"
                )
            )
            return
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        try:
            await dispatch(self, event)
        except CommandError as e:
            await self.send(error_event(e.code, str(e), param=e.param, event_id=event_id))
        if event["type"] == "session.update":
            # The client has set its voice, format and agent: the greeting can use them.
            await self._greet()

    def append_audio(self, audio_b64: str) -> bytes:
        """Decode an append's audio to pipeline PCM; raises CommandError if malformed."""
        try:
            raw = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError) as e:
            AUDIO_FRAMES_DROPPED.labels(DROP_INVALID_AUDIO).inc()
            raise CommandError("invalid_value", "audio is not valid base64.", param="audio") from e
        AUDIO_FRAMES_IN.inc()
        return self.decoder.decode(raw)

    def _track(self, event: SessionEvent) -> None:
        # What the admin page shows of this session: state, turns, last turn latency.
        live = self.live
        if isinstance(event, SpeechStarted):
            live.state = "hearing"
        elif isinstance(event, ResponseStarted):
            live.state = "thinking"
        elif isinstance(event, ResponseAudio):
            live.state = "speaking"
        elif isinstance(event, ResponseEnded):
            live.state = "listening"
            live.turns += 1
            latency = event.item.timings.get("end_of_speech_to_first_audio_ms")
            if latency is not None:
                live.last_turn_ms = latency

    async def _on_event(self, event: SessionEvent) -> None:
        self._track(event)
        encoded: bytes | None = None
        if isinstance(event, ResponseAudio):
            encoder = self._encoders.get(event.response_id)
            if encoder is None:
                # One encoder per response: the format is fixed for the response's lifetime.
                fmt = output_format(self.session)
                encoder = OutputEncoder(fmt, source_rate=event.chunk.sample_rate)
                self._encoders[event.response_id] = encoder
                self._delta_bytes[event.response_id] = fmt.bytes_per_ms * _AUDIO_DELTA_MS
            encoded = encoder.encode(event.chunk)
            for piece in _split(encoded, self._delta_bytes[event.response_id]):
                for out in self.renderer.render(event, encoded_audio=piece):
                    await self.send(out)
            return
        if isinstance(event, ResponseEnded):
            encoder = self._encoders.pop(event.response_id, None)
            self._delta_bytes.pop(event.response_id, None)
            tail = encoder.flush() if encoder is not None else b""
            if tail and event.status == "completed":
                # The resampler holds back a few ms; release them before the done events.
                flushed = ResponseAudio(event.response_id, event.item.id, AudioChunk(b"", 0))
                for out in self.renderer.render(flushed, encoded_audio=tail):
                    await self.send(out)
        for out in self.renderer.render(event, encoded_audio=encoded):
            await self.send(out)

    async def _write(self) -> None:
        while (event := await self._outbox.get()) is not None:
            try:
                await self.ws.send_text(json.dumps(event))
            except (WebSocketDisconnect, RuntimeError, ConnectionError):
                # The client is gone: stop producers from blocking on a dead socket.
                self._dead = True
                count_audio_unsent(event)
                while not self._outbox.empty():
                    count_audio_unsent(self._outbox.get_nowait())
                return
            count_audio_sent(event)


def _split(data: bytes, size: int) -> list[bytes]:
    size = max(2, size - size % 2)
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]
