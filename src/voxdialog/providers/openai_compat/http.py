"""The HTTP client remote providers share: timeouts, auth headers and error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from voxdialog.providers.base import ProviderError, ProviderTimeout, ProviderUnavailable
from voxdialog.settings import ProviderSettings

#: Statuses below 500 where trying again (later, or elsewhere) can help.
RETRYABLE_STATUSES = frozenset({408, 409, 429})
#: Error bodies are read up to this size; the rest is dropped.
MAX_ERROR_BODY = 64 * 1024
_MESSAGE_CHARS = 300
_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0)


def bearer_headers(settings: ProviderSettings) -> dict[str, str]:
    """``Authorization: Bearer <key>`` plus the configured extra headers.

    The key is ``"none"`` when there is none: Ollama ignores it, but some servers and SDKs
    reject an empty bearer token.
    """
    return {"Authorization": f"Bearer {settings.key() or 'none'}", **settings.headers}


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


def _error_message(body: bytes) -> str:
    """The human part of an error body (OpenAI, vLLM, ElevenLabs and FastAPI shapes)."""
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
    response: httpx.Response, *, body: bytes | None = None, provider: str = ""
) -> ProviderError:
    """The ``ProviderError`` an HTTP error response stands for.

    408, 409, 429 and 5xx are retryable and carry ``retry_after_s`` when the server sent
    ``Retry-After`` or ``retry-after-ms``; any other status is not retryable.

    Args:
        response: The response (status 400 or more).
        body: Its body, when it was streamed and read separately; else ``response.content``
            is used if it was read.
        provider: The provider name, to prefix the message with.

    Returns:
        The error to raise.
    """
    if body is None:
        try:
            body = response.content
        except httpx.ResponseNotRead:
            body = b""
    status = response.status_code
    detail = _error_message(body[:MAX_ERROR_BODY])[:_MESSAGE_CHARS]
    prefix = f"{provider}: " if provider else ""
    message = f"{prefix}HTTP {status}" + (f": {detail}" if detail else "")
    retryable = is_retryable_status(status)
    return ProviderError(
        message,
        retryable=retryable,
        status=status,
        retry_after_s=parse_retry_after(response.headers) if retryable else None,
    )


def error_from_exception(exc: httpx.HTTPError, *, provider: str = "") -> ProviderError:
    """The ``ProviderError`` a transport failure stands for.

    Timeouts become ``ProviderTimeout``, refused or unresolvable connections
    ``ProviderUnavailable``; a connection lost mid-answer is a retryable ``ProviderError``.
    """
    prefix = f"{provider}: " if provider else ""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"{prefix}timed out ({kind})")
    if isinstance(exc, httpx.ConnectError):
        return ProviderUnavailable(f"{prefix}cannot connect ({exc})")
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


class ProviderClient:
    """One provider's ``httpx.AsyncClient``: base URL, auth, timeouts and error mapping.

    The client is made on first use in each event loop (a pooled connection belongs to the
    loop that opened it), so a provider built at start-up works in whatever loop serves it.
    Call ``aclose()`` when done with the provider.

    Timeouts: connecting gets ``connect_timeout_s``; every read, write and pool wait gets
    ``timeout_s``. Callers put their own whole-request or first-byte limit on top.

    Args:
        settings: The provider's settings.
        name: The provider name, used in error messages.
        base_url: Where to send requests (paths are appended to it).
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
                base_url=self.base_url + "/",
                headers=self._headers,
                timeout=self._timeout,
                limits=_LIMITS,
            )
            self._loop = loop
        return self._client

    def url(self, path: str) -> str:
        """The full URL of ``path`` (relative to the base URL)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    @contextlib.asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        json: object | None = None,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """POST ``path`` and yield the response once its headers are in, body unread.

        Leaving the block closes the response; if the body was not read to the end, that
        closes the connection, which is how a streamed generation is aborted.

        Raises:
            ProviderError: The server answered with an error status, or the transport failed
                (here or while the caller read the body).
        """
        try:
            async with self.client().stream(
                "POST", self.url(path), json=json, params=params
            ) as response:
                if response.status_code >= 400:
                    body = await read_error_body(response)
                    raise self._scrub(error_from_response(response, body=body, provider=self.name))
                yield response
        except httpx.HTTPError as e:
            raise error_from_exception(e, provider=self.name) from e

    async def post(
        self,
        path: str,
        *,
        data: Mapping[str, str | list[str]] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> httpx.Response:
        """POST a form (multipart when ``files``) and read the whole answer.

        Raises:
            ProviderError: Error status or transport failure.
        """
        try:
            response = await self.client().post(self.url(path), data=data, files=files)
        except httpx.HTTPError as e:
            raise error_from_exception(e, provider=self.name) from e
        if response.status_code >= 400:
            raise self._scrub(error_from_response(response, provider=self.name))
        return response

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
