"""ScriptedFake: the base of the fakes that answer each request with the next scripted reply
(the Anthropic and webhook fakes), with the faults a test queues for the next requests."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from voxdialog.testing.fake_http import FakeServer, wait_for_disconnect

#: Header values never recorded (they hold keys).
SECRET_HEADERS = frozenset({"x-api-key", "authorization"})

_Reply = TypeVar("_Reply")


@dataclass(frozen=True, slots=True)
class Fault:
    """How the next request misbehaves (queue one per request with ``inject``).

    Attributes:
        status: Answer this HTTP status with an error body instead of a reply.
        error_type: The error's ``type`` in that body or in a mid-stream error event.
        retry_after: A ``Retry-After`` header value sent with ``status``.
        hang: Send nothing at all until the client goes away.
        first_token_delay_s: Send the headers (and any preamble) at once, the first token later.
        disconnect_after: Drop the connection after this many content deltas.
        error_event_after: Send an error event after this many content deltas, then end.
    """

    status: int | None = None
    error_type: str = "api_error"
    retry_after: str | None = None
    hang: bool = False
    first_token_delay_s: float = 0.0
    disconnect_after: int | None = None
    error_event_after: int | None = None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request a fake received; key headers hold ``"<redacted>"``, never the key."""

    path: str
    headers: dict[str, str]
    body: Any


def record(request: Request, body: Any) -> RecordedRequest:
    """A ``RecordedRequest`` for ``request``, with key headers redacted."""
    headers = {
        name: "<redacted>" if name in SECRET_HEADERS else value
        for name, value in request.headers.items()
    }
    return RecordedRequest(path=request.url.path, headers=headers, body=body)


def word_pieces(text: str) -> list[str]:
    """``text`` cut after each word, the way models stream it (joined, it is ``text`` again)."""
    pieces: list[str] = re.findall(r"\s*\S+|\s+$", text)
    return pieces


class ScriptedFake(FakeServer, ABC, Generic[_Reply]):
    """A fake that answers with scripted replies, the last one repeating once they run out.

    Subclasses route requests to their handlers, which take the body with ``_received``, the
    request's fault with ``_next_fault`` (answered by ``_faulted``) and the reply with
    ``_next_reply``, and stream through ``_counted``.

    Args:
        app: The fake's routes.
        replies: One per request.
    """

    def __init__(self, app: ASGIApp, replies: Iterable[_Reply]) -> None:
        super().__init__(app)
        self._replies: deque[_Reply] = deque(replies)
        self._faults: deque[Fault] = deque()
        #: Every request received, in order (key headers redacted).
        self.requests: list[RecordedRequest] = []
        #: Streams sent to their end, and streams that ended early (client gone or dropped).
        self.streams_completed = 0
        self.streams_aborted = 0

    def _forget(self, replies: Iterable[_Reply]) -> None:
        """Forget requests, faults and counters; script ``replies``."""
        self._replies = deque(replies)
        self._faults.clear()
        self.requests.clear()
        self.streams_completed = self.streams_aborted = 0

    def inject(self, *faults: Fault) -> None:
        """Queue faults: each of the next requests gets one, in order."""
        self._faults.extend(faults)

    @abstractmethod
    def _fault_error(self, fault: Fault) -> object:
        """The JSON of the answer to a ``status`` fault."""

    async def _received(self, request: Request) -> Any:
        """The request's JSON body (None if it is not JSON), once recorded."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(record(request, body))
        return body

    def _next_fault(self) -> Fault:
        return self._faults.popleft() if self._faults else Fault()

    async def _faulted(self, request: Request, fault: Fault) -> Response | None:
        """The answer a ``hang`` or ``status`` fault gives instead of a reply, else None."""
        if fault.hang:
            await wait_for_disconnect(request, self._closing)
            return Response(status_code=504)
        if fault.status is not None:
            headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
            return JSONResponse(self._fault_error(fault), status_code=fault.status, headers=headers)
        return None

    def _next_reply(self, default: _Reply) -> _Reply:
        """The next scripted reply (``default`` when none was scripted)."""
        if len(self._replies) > 1:
            return self._replies.popleft()
        return self._replies[0] if self._replies else default

    async def _counted(self, frames: AsyncGenerator[str, None]) -> AsyncIterator[str]:
        """``frames``, counted as a completed stream if they all went out, else as aborted."""
        finished = False
        try:
            async with aclosing(frames):
                async for frame in frames:
                    yield frame
            finished = True
        finally:
            if finished:
                self.streams_completed += 1
            else:
                self.streams_aborted += 1
