"""The one HTTP layer of remote providers: a pooled client per event loop, streamed and form
POSTs, server-sent events, and the one mapping of HTTP failures to ``ProviderError``s.

Every remote adapter (OpenAI-compatible STT, TTS and LLM, Anthropic, the webhook, ElevenLabs)
talks through ``ProviderClient``, so a failure means the same whichever provider hit it:

========================================  ==================================================
HTTP status 408, 409, 429, 5xx            ``ProviderError(retryable=True)``, ``status``, and
                                          ``retry_after_s`` from ``Retry-After`` or
                                          ``retry-after-ms``
any other error status                    ``ProviderError(retryable=False)``, ``status``
refused, unresolvable or slow to connect  ``ProviderUnavailable``
no answer (or first piece) in time, or a  ``ProviderTimeout``
stall mid-stream
connection lost mid-answer                ``ProviderError(retryable=True)``
a URL httpx cannot speak to               ``ProviderError(retryable=False)``
========================================  ==================================================

A connect timeout is ``ProviderUnavailable``, not ``ProviderTimeout``: nothing was sent, so the
server did not take too long to answer, it could not be reached at all, exactly like a refused
connection (both are retryable elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
)
from typing import Any, NamedTuple, TypeVar

import httpx

from voxdialog.providers.base import ProviderError, ProviderTimeout, ProviderUnavailable
from voxdialog.settings import ProviderSettings

_T = TypeVar("_T")
_END: Any = object()  # the end of a reader's pieces (``None`` may be a piece)

#: Statuses below 500 where trying again (later, or elsewhere) can help.
RETRYABLE_STATUSES = frozenset({408, 409, 429})
#: Error bodies are read up to this size; the rest is dropped.
MAX_ERROR_BODY = 64 * 1024
_MESSAGE_CHARS = 300
_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0)

#: Reads the pieces an answer holds (deltas, audio bytes, ...) from a successful response.
Reader = Callable[[httpx.Response], AsyncGenerator[_T, None]]


def bearer_headers(settings: ProviderSettings) -> dict[str, str]:
    """``Authorization: Bearer <key>`` plus the configured extra headers.

    The key is ``"none"`` when there is none: Ollama ignores it, but some servers and SDKs
    reject an empty bearer token.
    """
    return {"Authorization": f"Bearer {settings.key() or 'none'}", **settings.headers}


# --- error mapping -----------------------------------------------------------------------


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status says trying again can help (408, 409, 429 and every 5xx)."""
    return status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (OpenAI) or ``Retry-After`` (seconds or date).

    Returns:
        The delay in seconds (never negative), or ``None`` when absent or unreadable.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    millis = lower.get("retry-after-ms")
    if millis is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(millis) / 1000.0)
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_detail(body: bytes) -> str:
    """The human part of an error body (OpenAI, vLLM, ElevenLabs, FastAPI and n8n shapes)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        for key in ("error", "detail"):
            inner = data.get(key)
            if isinstance(inner, dict) and isinstance(inner.get("message"), str):
                return str(inner["message"])
            if isinstance(inner, str):
                return inner
        if isinstance(data.get("message"), str):
            return str(data["message"])
    return text


def error_from_response(
    response: httpx.Response,
    *,
    body: bytes | None = None,
    provider: str = "",
    detail: Callable[[bytes], str] = error_detail,
) -> ProviderError:
    """The ``ProviderError`` an HTTP error response stands for.

    408, 409, 429 and 5xx are retryable and carry ``retry_after_s`` when the server sent
    ``Retry-After`` or ``retry-after-ms``; any other status is not retryable.

    Args:
        response: The response (not 2xx).
        body: Its body, when it was streamed and read separately; else ``response.content``
            is used if it was read.
        provider: The provider name, to prefix the message with.
        detail: What the message says about the body (a server's own error shape).

    Returns:
        The error to raise.
    """
    if body is None:
        try:
            body = response.content
        except httpx.ResponseNotRead:
            body = b""
    status = response.status_code
    text = detail(body[:MAX_ERROR_BODY])[:_MESSAGE_CHARS]
    prefix = f"{provider}: " if provider else ""
    retryable = is_retryable_status(status)
    return ProviderError(
        f"{prefix}HTTP {status}" + (f": {text}" if text else ""),
        retryable=retryable,
        status=status,
        retry_after_s=parse_retry_after(response.headers) if retryable else None,
    )


def error_from_exception(exc: httpx.HTTPError, *, provider: str = "") -> ProviderError:
    """The ``ProviderError`` a transport failure stands for (see the module's table)."""
    prefix = f"{provider}: " if provider else ""
    kind = type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ProviderUnavailable(f"{prefix}cannot connect ({kind}: {exc})")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"{prefix}timed out ({kind})")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ProviderError(f"{prefix}bad base URL ({exc})", retryable=False)
    if isinstance(exc, httpx.TransportError | httpx.DecodingError):
        return ProviderError(f"{prefix}connection failed ({kind}: {exc})", retryable=True)
    return ProviderError(f"{prefix}request failed ({kind}: {exc})", retryable=False)


async def read_error_body(response: httpx.Response) -> bytes:
    """Read at most ``MAX_ERROR_BODY`` bytes of a streamed error response."""
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        parts.append(part)
        size += len(part)
        if size >= MAX_ERROR_BODY:
            break
    return b"".join(parts)[:MAX_ERROR_BODY]


# --- server-sent events ------------------------------------------------------------------


class SseEvent(NamedTuple):
    """One server-sent event: its ``event`` field ("" when absent) and its joined data."""

    event: str
    data: str


async def sse_events(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    """The events of a server-sent-events body, read from its lines.

    Blank lines end an event; comment lines (``: OPENROUTER PROCESSING``) and fields other
    than ``event`` and ``data`` are skipped; several ``data`` lines of one event are joined by
    newlines. A last event without a blank line after it still counts (some servers end so).
    """
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data or event:
                yield SseEvent(event, "\n".join(data))
            event, data = "", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
    if data:
        yield SseEvent(event, "\n".join(data))


# --- the client --------------------------------------------------------------------------


class ProviderClient:
    """One provider's HTTP client: pooled connections, auth, timeouts and error mapping.

    The ``httpx.AsyncClient`` is made on first use in each event loop (a pooled connection
    belongs to the loop that opened it), so a provider built at start-up works in whatever
    loop serves it. Call ``aclose()`` when done with the provider.

    Timeouts: connecting gets ``connect_timeout_s``; every read, write and pool wait gets
    ``timeout_s``; on top, a streamed answer's first piece and a whole form answer must come
    within ``timeout_s`` of the request.

    Args:
        settings: The provider's settings (timeouts, key).
        name: The provider name, used in error messages.
        base_url: Where requests go: paths are appended to it, and the empty path is the URL
            itself (a webhook).
        headers: Auth and extra headers for every request.
    """

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        name: str,
        base_url: str,
        headers: Mapping[str, str],
    ) -> None:
        self.name = name
        self._url = base_url
        self.base_url = base_url.rstrip("/")
        self.timeout_s = settings.timeout_s
        self._timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        self._headers = dict(headers)
        # Some servers echo a bad key in their error message; it must not reach our logs.
        self._secret = settings.key() or None
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        """The client for the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed or self._loop is not loop:
            self._client = httpx.AsyncClient(
                headers=self._headers, timeout=self._timeout, limits=_LIMITS
            )
            self._loop = loop
        return self._client

    def url(self, path: str) -> str:
        """The full URL of ``path`` (relative to the base URL; ``""`` is the base URL)."""
        return f"{self.base_url}/{path.lstrip('/')}" if path else self._url

    async def stream(
        self,
        path: str,
        read: Reader[_T],
        *,
        json: object,
        params: Mapping[str, str] | None = None,
        awaited: str = "answer",
        detail: Callable[[bytes], str] = error_detail,
    ) -> AsyncGenerator[_T, None]:
        """POST ``json`` to ``path`` and yield the pieces ``read`` takes from the answer.

        Connecting, the answer's headers and the first piece must all come within
        ``timeout_s``; after that, httpx's read timeout limits each stall. Closing or
        cancelling the iteration closes the response, which aborts the answer.

        Args:
            path: Relative to the base URL.
            read: Gets the response of a 2xx answer, headers in and body unread.
            json: The body.
            params: Query parameters.
            awaited: What the first piece is, for the timeout message (``audio``).
            detail: What an error message says about the error body.

        Raises:
            ProviderTimeout: No first piece within ``timeout_s``, or a stall after it.
            ProviderUnavailable: The server cannot be reached.
            ProviderError: An error status, a broken connection, or what ``read`` raises.
        """
        deadline: float | None = asyncio.get_running_loop().time() + self.timeout_s
        client = self.client()
        request = client.build_request("POST", self.url(path), json=json, params=params)
        response = await self._guard(client.send(request, stream=True), deadline, awaited)
        try:
            if not response.is_success:
                body = await self._guard(read_error_body(response), deadline, awaited)
                raise self._scrub(
                    error_from_response(response, body=body, provider=self.name, detail=detail)
                )
            pieces = read(response)
            try:
                while (
                    piece := await self._guard(anext(pieces, None), deadline, awaited)
                ) is not None:
                    deadline = None  # after the first piece, httpx's read timeout limits stalls
                    yield piece
            finally:
                await pieces.aclose()
        finally:
            await response.aclose()

    async def post(
        self,
        path: str,
        *,
        data: Mapping[str, str | list[str]] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        awaited: str = "answer",
    ) -> httpx.Response:
        """POST a form (multipart when ``files``) and read the whole answer within ``timeout_s``.

        Raises:
            ProviderTimeout: No whole answer in time.
            ProviderUnavailable: The server cannot be reached.
            ProviderError: Error status or transport failure.
        """
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        step = self.client().post(self.url(path), data=data, files=files)
        response = await self._guard(step, deadline, awaited)
        if not response.is_success:
            raise self._scrub(error_from_response(response, provider=self.name))
        return response

    async def _guard(self, step: Awaitable[_T], deadline: float | None, awaited: str) -> _T:
        """Await ``step`` before ``deadline``, mapping transport failures to ProviderErrors."""
        try:
            async with asyncio.timeout_at(deadline):
                return await step
        except TimeoutError as e:
            raise ProviderTimeout(f"{self.name}: no {awaited} within {self.timeout_s:g} s") from e
        except httpx.HTTPError as e:
            raise error_from_exception(e, provider=self.name) from e

    def _scrub(self, error: ProviderError) -> ProviderError:
        if not self._secret or self._secret not in str(error):
            return error
        return ProviderError(
            str(error).replace(self._secret, "***"),
            retryable=error.retryable,
            status=error.status,
            retry_after_s=error.retry_after_s,
        )

    async def aclose(self) -> None:
        """Close the client of the running loop (connections of other loops are dropped)."""
        client, self._client = self._client, None
        loop, self._loop = self._loop, None
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()
