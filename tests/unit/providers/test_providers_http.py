"""The one HTTP layer of remote providers: status and transport error mapping, Retry-After, SSE."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from voxdialog.providers.base import ProviderError, ProviderTimeout, ProviderUnavailable
from voxdialog.providers.http import (
    error_from_exception,
    error_from_response,
    parse_retry_after,
    sse_events,
)


def test_retry_after_reads_seconds_milliseconds_and_dates() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"Retry-After": "7", "retry-after-ms": "1200"}) == 1.2
    assert parse_retry_after({"Retry-After": "-3"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    waited = parse_retry_after({"Retry-After": later})
    assert waited is not None
    assert 50.0 < waited <= 60.0


def response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, content=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (413, False),
        (422, False),
    ],
)
def test_statuses_map_to_retryable_or_not(status: int, retryable: bool) -> None:
    error = error_from_response(response(status, headers={"Retry-After": "4"}), provider="p")
    assert type(error) is ProviderError
    assert (error.status, error.retryable) == (status, retryable)
    assert error.retry_after_s == (4.0 if retryable else None)
    assert str(error).startswith(f"p: HTTP {status}")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error": {"message": "model not found", "type": "invalid_request_error"}}',
            "model not found",
        ),
        (
            b'{"detail": {"status": "quota_exceeded", "message": "out of credits"}}',
            "out of credits",
        ),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'{"object": "error", "message": "context too long", "code": 400}', "context too long"),
        (b'{"error": "upstream timeout"}', "upstream timeout"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    ],
)
def test_error_messages_come_from_each_servers_body_shape(body: bytes, message: str) -> None:
    assert str(error_from_response(response(400, body))) == f"HTTP 400: {message}"


def test_transport_failures_map_to_timeout_unavailable_or_lost_connection() -> None:
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    assert isinstance(
        error_from_exception(httpx.ReadTimeout("t", request=request)), ProviderTimeout
    )
    # Nothing was sent: the server could not be reached, as with a refused connection.
    assert isinstance(
        error_from_exception(httpx.ConnectTimeout("t", request=request)), ProviderUnavailable
    )
    refused = error_from_exception(httpx.ConnectError("refused", request=request))
    assert isinstance(refused, ProviderUnavailable)
    lost = error_from_exception(httpx.RemoteProtocolError("peer closed", request=request))
    assert (type(lost), lost.retryable) == (ProviderError, True)
    bad_url = error_from_exception(httpx.UnsupportedProtocol("ftp", request=request))
    assert not bad_url.retryable


# --- SSE and chunks ------------------------------------------------------------------------


async def lines(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


async def events(*items: str) -> list[tuple[str, str]]:
    return [(e.event, e.data) async for e in sse_events(lines(*items))]


async def test_sse_skips_comments_and_other_fields_and_joins_multiline_data() -> None:
    got = await events(
        ": OPENROUTER PROCESSING",
        "",
        "event: message",
        "id: 1",
        'data: {"a":',
        "data: 1}",
        "",
        "data:{}",
        "",
        "event: ping",
        "",
    )
    assert got == [("message", '{"a":\n1}'), ("", "{}"), ("ping", "")]


async def test_sse_keeps_a_last_event_without_a_blank_line_at_the_end() -> None:
    assert await events("data: 1", "", "data: 2") == [("", "1"), ("", "2")]
