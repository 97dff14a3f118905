"""ScriptedFake: the base of the fakes that answer each request with the next scripted reply
(the Anthropic and webhook fakes); faults are ``fake_http``'s, queued with ``inject``."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from voxdialog.testing.fake_http import FakeServer, Fault

#: Header values never recorded (they hold keys).
SECRET_HEADERS = frozenset({"x-api-key", "authorization"})

_Reply = TypeVar("_Reply")


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
    request's fault with ``take_fault`` (answered by ``_faulted``) and the reply with
    ``_next_reply``, and stream through ``counted`` and ``play``.

    Args:
        app: The fake's routes.
        replies: One per request.
    """

    def __init__(self, app: ASGIApp, replies: Iterable[_Reply]) -> None:
        super().__init__(app)
        self._replies: deque[_Reply] = deque(replies)
        #: Every request received, in order (key headers redacted).
        self.requests: list[RecordedRequest] = []

    def _forget(self, replies: Iterable[_Reply]) -> None:
        """Forget requests, faults and counters; script ``replies``."""
        self._replies = deque(replies)
        self.clear_faults()
        self.requests.clear()

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

    async def _faulted(self, request: Request, fault: Fault) -> Response | None:
        """The answer a ``hang`` or ``status`` fault gives instead of a reply, else None."""
        return await self.fault_answer(request, fault, self._fault_error)

    def _next_reply(self, default: _Reply) -> _Reply:
        """The next scripted reply (``default`` when none was scripted)."""
        if len(self._replies) > 1:
            return self._replies.popleft()
        return self._replies[0] if self._replies else default
