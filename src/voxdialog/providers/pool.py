"""One pooled httpx client per event loop, for remote providers."""

from __future__ import annotations

import asyncio

import httpx

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
