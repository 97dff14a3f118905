"""FakeOpenAIServer: a local server speaking the OpenAI (and ElevenLabs) HTTP API, with faults.

Typical use::

    with FakeOpenAIServer() as fake:
        fake.replies.append(ChatReply(text="Hi there."))
        fake.inject(Fault(status=429, retry_after="2"))
        client = AsyncOpenAI(base_url=fake.url, api_key="k")   # or a provider at fake.url
        ...
        assert fake.requests[-1].json["model"] == "m"
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from voxdialog.audio.errors import AudioDecodeError, UnsupportedAudioFormat
from voxdialog.audio.wav import read_wav, wav_header
from voxdialog.testing.fake_http import FakeServer, Fault, LiveStream, Piece, play
from voxdialog.testing.openai_wire import (
    ChatAnswer,
    ChatReply,
    FakeToolCall,
    openai_error,
    sse,
    verbose_transcription,
)
from voxdialog.testing.signals import tone

__all__ = [
    "SPEECH_RATE",
    "ChatReply",
    "FakeOpenAIServer",
    "FakeToolCall",
    "Fault",
    "RecordedRequest",
]

#: What the fake speaks in (OpenAI ``pcm``).
SPEECH_RATE = 24_000
_EL_RATES = frozenset({8000, 16000, 22050, 24000, 44100, 48000})
_KEEPALIVE = b": OPENROUTER PROCESSING\n\n"


@dataclass(slots=True)
class RecordedRequest:
    """One request the fake received. Header names are lower case; ``authorization`` and
    ``xi-api-key`` are left out of ``headers`` and their key is in ``api_key`` instead."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    api_key: str | None = field(default=None, repr=False)
    json: Any = None
    form: dict[str, list[str]] = field(default_factory=dict)
    file: bytes | None = field(default=None, repr=False)
    file_name: str | None = None
    #: The client went away before the answer ended (cancellation, timeout).
    disconnected: bool = False

    def mark_disconnected(self) -> None:
        """Note that the client went away before the answer ended."""
        self.disconnected = True


class FakeOpenAIServer(FakeServer):
    """A Starlette app on a free 127.0.0.1 port, run by uvicorn in a background thread.

    Serves ``POST /v1/chat/completions`` (streamed or not), ``/v1/audio/transcriptions``,
    ``/v1/audio/speech`` (a sine tone as ``pcm`` or ``wav``) and ElevenLabs'
    ``/v1/text-to-speech/{voice_id}/stream``. Use it as a context manager, or ``start()``
    and ``stop()``. Tests change its attributes between requests from their own thread.

    Args:
        api_key: When set, OpenAI routes answer 401 to any other bearer key.
        transcript: What every transcription hears.
        chunk_delay_s: Pause between streamed pieces (to leave time for a cancellation).
        tone_hz: Frequency of the speech tone.
        speech_ms_per_char: Length of speech per input character (at speed 1).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        transcript: str = "Hello there.",
        chunk_delay_s: float = 0.0,
        tone_hz: float = 440.0,
        speech_ms_per_char: float = 40.0,
    ) -> None:
        self._defaults = (api_key, transcript, chunk_delay_s, tone_hz, speech_ms_per_char)
        #: Chat answers, used in order; when empty, ``default_reply`` answers.
        self.replies: deque[ChatReply] = deque()
        #: Every request received, in order.
        self.requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"]),
                Route("/v1/audio/speech", self._speech, methods=["POST"]),
                Route("/v1/text-to-speech/{voice_id}/stream", self._elevenlabs, methods=["POST"]),
            ]
        )
        super().__init__(
            app,
            name="fake-openai",
            http="h11",
            ws="none",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self.reset()

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>`` (ElevenLabs' base URL)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, the ``base_url`` for OpenAI clients."""
        return f"{self.origin}/v1"

    def reset(self) -> None:
        """Forget requests, replies and faults, and restore the constructor's settings."""
        (
            self.api_key,
            self.transcript,
            self.chunk_delay_s,
            self.tone_hz,
            self.speech_ms_per_char,
        ) = self._defaults
        self.default_reply = ChatReply(text="Hello! How can I help you today?")
        #: Chat streams start with reasoning chunks (``reasoning_content``, ``reasoning``).
        self.stream_reasoning = False
        #: Chat streams carry ": OPENROUTER PROCESSING" comments between chunks and while slow.
        self.keepalive_comments = False
        #: In-stream errors take vLLM's shape (``{"object": "error", ...}``).
        self.vllm_errors = False
        self.replies.clear()
        self.clear_faults()
        self.requests.clear()

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The requests whose path contains ``path``."""
        return [r for r in self.requests if path in r.path]

    async def wait_for_disconnect(self, *, timeout_s: float = 5.0) -> bool:
        """Wait (in any event loop) until a client has left mid-answer; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while not any(r.disconnected for r in self.requests):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # --- plumbing ------------------------------------------------------------------------

    async def _record(self, request: Request) -> RecordedRequest:
        headers = {k.lower(): v for k, v in request.headers.items()}
        auth = headers.pop("authorization", None)
        key = headers.pop("xi-api-key", None)
        if auth is not None:
            key = auth.removeprefix("Bearer ").strip()
        record = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers=headers,
            api_key=key,
        )
        if headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form() as form:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        record.file, record.file_name = await value.read(), value.filename
                    else:
                        record.form.setdefault(name, []).append(value)
        else:
            body = await request.body()
            try:
                record.json = json.loads(body) if body else None
            except ValueError:
                record.json = None
        self.requests.append(record)
        return record

    async def _early(
        self, request: Request, record: RecordedRequest, fault: Fault
    ) -> Response | None:
        """A response for a fault that strikes before any answer, or for a bad key."""
        is_openai = "text-to-speech" not in record.path

        def error_body(fault: Fault) -> object:
            message = fault.message or "injected fault"
            if is_openai:
                return openai_error(fault.status or 500, message)
            return {"detail": {"status": "error", "message": message}}

        answer = await self.fault_answer(
            request, fault, error_body, on_disconnect=record.mark_disconnected
        )
        if answer is not None:
            return answer
        if is_openai and self.api_key is not None and record.api_key != self.api_key:
            error = openai_error(401, "Incorrect API key provided", code="invalid_api_key")
            return JSONResponse(error, status_code=401)
        return None

    def _stream(
        self,
        pieces: Iterable[bytes],
        record: RecordedRequest,
        fault: Fault,
        *,
        media_type: str,
        error: bytes = b"",
        malformed: bytes = b"",
        keepalive: bytes | None = None,
    ) -> Response:
        body = play(
            (Piece(p) for p in pieces),
            fault,
            delay_s=self.chunk_delay_s,
            error=error,
            malformed=malformed,
            keepalive=keepalive,
        )
        return LiveStream(
            self.counted(body), media_type=media_type, on_disconnect=record.mark_disconnected
        )

    # --- chat ----------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        record = await self._record(request)
        fault = self.take_fault(record.path)
        if (early := await self._early(request, record, fault)) is not None:
            return early
        body = record.json
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
            return JSONResponse(openai_error(400, "model and messages are required"), 400)
        reply = self.replies.popleft() if self.replies else self.default_reply
        answer = ChatAnswer(reply, body, self._ids)
        if not body.get("stream"):
            return JSONResponse(answer.completion())
        options = body.get("stream_options")
        usage = isinstance(options, dict) and bool(options.get("include_usage"))
        chunks = answer.chunks(reasoning=self.stream_reasoning, usage=usage)
        pieces = [sse(c) for c in chunks] + [b"data: [DONE]\n\n"]
        keepalive = _KEEPALIVE if self.keepalive_comments else None
        if keepalive is not None:
            pieces = [keepalive + p for p in pieces]
        return self._stream(
            pieces,
            record,
            fault,
            media_type="text/event-stream",
            error=sse(self._error_chunk(fault)),
            malformed=b'data: {"id": "chatcmpl-broken", "choices": [\n\n',
            keepalive=keepalive,
        )

    def _error_chunk(self, fault: Fault) -> dict[str, Any]:
        code = fault.error_type or "500"
        message = fault.message or "injected fault"
        if self.vllm_errors:
            return {"object": "error", "message": message, "code": int(code)}
        return openai_error(int(code), message, code=code)

    # --- audio ---------------------------------------------------------------------------

    async def _transcribe(self, request: Request) -> Response:
        record = await self._record(request)
        fault = self.take_fault(record.path)
        if (early := await self._early(request, record, fault)) is not None:
            return early
        form = {k: v[-1] for k, v in record.form.items()}
        if record.file is None or not form.get("model"):
            return JSONResponse(openai_error(400, "file and model are required"), 400)
        try:
            clip = read_wav(record.file)
            duration = round(clip.duration_ms / 1000.0, 3)
        except (AudioDecodeError, UnsupportedAudioFormat):
            duration = 0.0
        text, fmt = self.transcript, form.get("response_format", "json")
        if fmt == "text":
            return PlainTextResponse(text + "\n")
        if fmt == "json":
            return JSONResponse({"text": text, "usage": {"type": "duration", "seconds": duration}})
        if fmt != "verbose_json":
            return JSONResponse(openai_error(400, f"the fake does not write {fmt}"), 400)
        language = form.get("language") or "english"
        word_times = "word" in record.form.get("timestamp_granularities[]", [])
        return JSONResponse(
            verbose_transcription(text, duration=duration, language=language, word_times=word_times)
        )

    def _tone_pieces(self, text: str, speed: float, rate: int) -> list[bytes]:
        ms = max(200.0, len(text) * self.speech_ms_per_char) / max(speed, 0.25)
        pcm = tone(ms, freq=self.tone_hz, rate=rate)
        step = rate // 20 * 2  # 50 ms
        return [pcm[i : i + step] for i in range(0, len(pcm), step)]

    async def _speech(self, request: Request) -> Response:
        record = await self._record(request)
        fault = self.take_fault(record.path)
        if (early := await self._early(request, record, fault)) is not None:
            return early
        body = record.json
        if not isinstance(body, dict) or not all(body.get(k) for k in ("model", "input", "voice")):
            return JSONResponse(openai_error(400, "model, input and voice are required"), 400)
        fmt = body.get("response_format", "mp3")
        speed = float(body.get("speed") or 1.0)
        pieces = self._tone_pieces(str(body["input"]), speed, SPEECH_RATE)
        if fmt == "wav":
            return self._stream(
                [wav_header(SPEECH_RATE), *pieces], record, fault, media_type="audio/wav"
            )
        if fmt != "pcm":
            return JSONResponse(openai_error(400, "the fake speaks pcm and wav only"), 400)
        return self._stream(pieces, record, fault, media_type="audio/pcm")

    async def _elevenlabs(self, request: Request) -> Response:
        record = await self._record(request)
        fault = self.take_fault(record.path)
        if (early := await self._early(request, record, fault)) is not None:
            return early
        body = record.json
        output = record.query.get("output_format", "mp3_44100_128")
        rate = int(output.removeprefix("pcm_")) if re.fullmatch(r"pcm_\d+", output) else 0
        if not isinstance(body, dict) or not body.get("text") or rate not in _EL_RATES:
            detail = {"status": "invalid_request", "message": "text and a pcm output_format"}
            return JSONResponse({"detail": detail}, 422)
        settings = body.get("voice_settings") or {}
        pieces = self._tone_pieces(str(body["text"]), float(settings.get("speed", 1.0)), rate)
        return self._stream(pieces, record, fault, media_type="audio/pcm")
