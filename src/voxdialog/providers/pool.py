"""Shared HTTP plumbing of streaming providers: a pooled client per loop, error mapping."""

from __future__ import annotations

import asyncio

import httpx

from voxdialog.providers.base import ProviderError, ProviderTimeout, ProviderUnavailable
from voxdialog.settings import ProviderSettings


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
