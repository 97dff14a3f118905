"""Shared HTTP plumbing of streaming providers: a pooled client per loop, error mapping, SSE,
and the streamed POST whose answer must start before a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

import httpx

from voxdialog.providers.base import ProviderError, ProviderTimeout, ProviderUnavailable
from voxdialog.providers.openai_compat.http import is_retryable_status, parse_retry_after
from voxdialog.settings import ProviderSettings

_T = TypeVar("_T")


class LoopClient:
    """Hands out an ``httpx.AsyncClient`` for the running loop (a connection belongs to the
    loop that opened it), with the provider's timeouts."""

    def __init__(self, settings: ProviderSettings) -> None:
        self._timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> httpx.AsyncClient:
        """The client for the running loop."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http = httpx.AsyncClient(timeout=self._timeout)
            self._loop = loop
        return self._http

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def transport_error(name: str, e: httpx.TransportError) -> ProviderError:
    """The ``ProviderError`` a transport failure of a streaming provider stands for."""
    if isinstance(e, httpx.UnsupportedProtocol):
        return ProviderError(f"{name}: bad base URL ({e})", retryable=False)
    if isinstance(e, httpx.ConnectError | httpx.ConnectTimeout):
        return ProviderUnavailable(f"{name}: cannot connect ({type(e).__name__})")
    if isinstance(e, httpx.TimeoutException):
        return ProviderTimeout(f"{name}: stream stalled ({type(e).__name__})")
    return ProviderError(f"{name}: connection failed ({type(e).__name__})", retryable=True)


def refusal(response: httpx.Response, message: str) -> ProviderError:
    """The ``ProviderError`` of an error answer: retryable by its status, with its Retry-After."""
    status = response.status_code
    return ProviderError(
        message,
        retryable=is_retryable_status(status),
        status=status,
        retry_after_s=parse_retry_after(response.headers),
    )


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """``(event, data)`` pairs from a server-sent-events body (comment lines are skipped)."""
    event = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data or event:
                yield event, "\n".join(data)
            event, data = "", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


class StreamingPost:
    """POSTs JSON to one URL and streams what its answer holds, the first piece before a deadline.

    Connecting, the answer's headers and the first piece ``read`` makes of it must all come
    within ``settings.timeout_s``; after the first piece, httpx's read timeout limits each
    stall. Transport failures become ``ProviderError``s.

    Args:
        settings: The timeouts (``timeout_s``, ``connect_timeout_s``).
        name: The provider name, for error messages.
        url: Where to POST.
        headers: Sent with every request.
        awaited: What the deadline waits for, as its timeout message says (``first token``).
    """

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        name: str,
        url: str,
        headers: Mapping[str, str],
        awaited: str,
    ) -> None:
        self.url = url
        self._name = name
        self._headers = dict(headers)
        self._awaited = awaited
        self._timeout_s = settings.timeout_s
        self._pool = LoopClient(settings)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._pool.aclose()

    async def stream(
        self, body: object, read: Callable[[httpx.Response], AsyncGenerator[_T, None]]
    ) -> AsyncGenerator[_T, None]:
        """POST ``body`` and yield the pieces ``read`` takes from the answer.

        ``read`` gets the response as soon as its headers are in, whatever its status, so it
        decides what an error status means. Closing or cancelling the iteration closes the
        response, which aborts the answer.

        Raises:
            ProviderTimeout: No first piece within ``timeout_s``, or a stall after it.
            ProviderUnavailable: The server cannot be reached.
            ProviderError: What ``read`` raises, or another transport failure.
        """
        client = self._pool.get()
        deadline: float | None = asyncio.get_running_loop().time() + self._timeout_s
        request = client.build_request("POST", self.url, json=body, headers=self._headers)
        response = await self._guard(client.send(request, stream=True), deadline)
        try:
            pieces = read(response)
            try:
                while (piece := await self._guard(anext(pieces, None), deadline)) is not None:
                    deadline = None  # after the first piece, httpx's read timeout limits stalls
                    yield piece
            finally:
                await pieces.aclose()
        finally:
            await response.aclose()

    async def _guard(self, step: Awaitable[_T], deadline: float | None) -> _T:
        """Await ``step`` before ``deadline``, mapping transport failures to ProviderErrors."""
        try:
            async with asyncio.timeout_at(deadline):
                return await step
        except TimeoutError as e:
            raise ProviderTimeout(
                f"{self._name}: no {self._awaited} within {self._timeout_s:g} s"
            ) from e
        except httpx.TransportError as e:
            raise transport_error(self._name, e) from e
