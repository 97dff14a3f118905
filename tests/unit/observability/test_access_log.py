"""R15: the access log writes one line per request or socket, and no line holds a credential."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest

from voxdialog.observability.access_log import AccessLog, Message, Receive, Send
from voxdialog.observability.logging import make_log_handler
from voxdialog.observability.redact import redact, redacted_query

API_KEY = "vxd_" + "Q" * 40
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlLWJ5dGVz"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the root logger writes at INFO and above, as JSON lines."""
    stream = io.StringIO()
    handler = make_log_handler(stream, json_lines=True)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "line",
    [
        f"GET /v1/realtime?token={API_KEY}&model=x",
        f'("127.0.0.1", 5) - "WebSocket /v1/realtime?ticket={JWT}" [accepted]',
        f"Authorization: Bearer {API_KEY}",
        f"Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.{API_KEY}",
        f'{{"password": "{API_KEY}", "email": "a@b.c"}}',
        f"access_token={JWT}; refresh_token={JWT}",
        f"failed for key {API_KEY} and ticket {JWT}",
    ],
)
def test_redact_removes_the_credential_from_any_line(line: str) -> None:
    cleaned = redact(line)
    assert API_KEY not in cleaned
    assert JWT not in cleaned
    assert "[redacted]" in cleaned


def test_redacted_query_keeps_names_and_harmless_values() -> None:
    query = f"model=gpt-realtime&token={API_KEY}&Ticket={JWT}&api_key=x&access_token=y&agent=a"
    assert redacted_query(query) == (
        "model=gpt-realtime&token=[redacted]&Ticket=[redacted]&api_key=[redacted]"
        "&access_token=[redacted]&agent=a"
    )


def test_every_handler_redacts_what_a_library_logs(log_lines: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5", f"/v1/realtime?token={API_KEY}"
    )
    logging.getLogger("tests").info("oops", extra={"authorization": f"Bearer {JWT}"})
    text = log_lines.getvalue()
    assert API_KEY not in text
    assert JWT not in text
    assert len(_records(log_lines)) == 2


def test_a_text_handler_redacts_too() -> None:
    stream = io.StringIO()
    record = logging.makeLogRecord({"msg": "path %s", "args": (f"/x?ticket={JWT}",)})
    make_log_handler(stream).handle(record)
    assert JWT not in stream.getvalue()
    assert "ticket=[redacted]" in stream.getvalue()


async def _plain_app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _socket_app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1008})


async def _refusing_app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "websocket.close", "code": 1008})


async def _failing_app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    raise RuntimeError("boom")


async def _call(app: AccessLog, scope: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _scope(kind: str, query: str) -> dict[str, Any]:
    return {
        "type": kind,
        "method": "POST",
        "path": "/v1/realtime",
        "query_string": query.encode(),
        "client": ("203.0.113.9", 4711),
    }


async def test_one_line_per_request_with_status_and_no_secret(log_lines: io.StringIO) -> None:
    ticks = iter([10.0, 10.25])
    app = AccessLog(_plain_app, clock=lambda: next(ticks))
    sent = await _call(app, _scope("http", f"token={API_KEY}&model=m"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    (line,) = _records(log_lines)
    assert line["logger"] == "voxdialog.access"
    assert line["method"] == "POST"
    assert line["path"] == "/v1/realtime?token=[redacted]&model=m"
    assert line["status"] == 204
    assert line["duration_ms"] == 250.0
    assert line["client"] == "203.0.113.9"


@pytest.mark.parametrize(
    ("app", "status"), [(_socket_app, 101), (_refusing_app, 403)], ids=["accepted", "refused"]
)
async def test_one_line_per_websocket_with_its_close_code(
    log_lines: io.StringIO, app: Any, status: int
) -> None:
    await _call(AccessLog(app), _scope("websocket", f"ticket={JWT}"))
    (line,) = _records(log_lines)
    assert (line["method"], line["status"], line["close_code"]) == ("WS", status, 1008)
    assert line["path"] == "/v1/realtime?ticket=[redacted]"


async def test_a_failing_request_is_logged_as_500(log_lines: io.StringIO) -> None:
    with pytest.raises(RuntimeError):
        await _call(AccessLog(_failing_app), _scope("http", ""))
    (line,) = _records(log_lines)
    assert (line["status"], line["path"]) == (500, "/v1/realtime")


async def test_lifespan_passes_through_unlogged(log_lines: io.StringIO) -> None:
    await _call(AccessLog(_plain_app), {"type": "lifespan"})
    assert _records(log_lines) == []
