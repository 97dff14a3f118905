"""The request guard on uploads, as pure ASGI: size and credential before the body, then a cap.

``POST /v1/audio/transcriptions`` must never have its body read for a client that declares too
much or has no valid credential, and a body without a length is cut off at the cap (R7). The
property tests drive the guard with any declared length, chunking, credential and app
behaviour (R6: ≥ 500 examples per parser).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxdialog.api.guard import HUGE, UPLOAD_FORM_ALLOWANCE, RequestGuard, parse_content_length
from voxdialog.settings import LimitSettings, RateLimitSettings, Settings

LIMIT = 4_096
CAP = LIMIT + UPLOAD_FORM_ALLOWANCE
KEY = "vxd_valid"
UPLOAD = "/v1/audio/transcriptions"


@dataclass
class Exchange:
    """One request through the guard: what the app saw and what the client got."""

    receive_calls: int = 0
    app_called: bool = False
    app_bytes: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> int:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, starts
        return int(starts[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return {k.decode(): v.decode() for k, v in start["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


class FakeRuntime:
    """What the guard asks of the runtime: settings, and who a credential belongs to."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limiter = None

    async def authenticate(self, credential: str | None) -> object | None:
        return object() if credential == KEY else None


SETTINGS = Settings(
    data_dir=Path("unused"),  # the guard never touches it
    limits=LimitSettings(max_upload_bytes=LIMIT),
    rate_limits=RateLimitSettings(enabled=False),
)


def run(
    *,
    path: str = UPLOAD,
    method: str = "POST",
    declared: int | str | None,
    chunks: list[int],
    key: str | None,
    app_mode: str = "read",
) -> Exchange:
    """Send one request through the guard to a stub app that reads the whole body.

    ``app_mode``: ``read`` answers 200; ``parse_error`` turns a failing receive into its own
    400 (as FastAPI's form parsing does); ``raise`` lets it escape.
    """
    ex = Exchange()
    headers = [(b"content-type", b"multipart/form-data; boundary=x")]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    app_state = SimpleNamespace(state=SimpleNamespace(runtime=FakeRuntime(SETTINGS)))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "app": app_state,
        "client": ("127.0.0.1", 5000),
        "query_string": b"",
    }
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        ex.receive_calls += 1
        if not pending:
            return {"type": "http.disconnect"}
        size = pending.pop(0)
        return {"type": "http.request", "body": b"x" * size, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        ex.sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        ex.app_called = True
        try:
            while True:
                message = await receive()
                ex.app_bytes += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
        except Exception:
            if app_mode == "raise":
                raise
            status = 400
        else:
            status = 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    asyncio.run(RequestGuard(app)(scope, receive, send))
    return ex


def error_of(ex: Exchange) -> dict[str, Any]:
    body = json.loads(ex.body)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_a_declared_length_over_the_limit_is_413_before_anything_else() -> None:
    for key in (KEY, None, "vxd_wrong"):
        ex = run(declared=10 * 1024**3, chunks=[1_000], key=key)
        assert ex.status == 413
        assert ex.receive_calls == 0
        assert not ex.app_called
        assert ex.headers["connection"] == "close"
        assert error_of(ex) == {
            "message": f"File is larger than the {LIMIT} byte limit.",
            "type": "invalid_request_error",
            "param": "file",
            "code": "file_too_large",
        }


@pytest.mark.parametrize("key", [None, "vxd_wrong", ""])
def test_an_upload_without_a_valid_credential_is_401_without_reading_its_body(
    key: str | None,
) -> None:
    ex = run(declared=LIMIT, chunks=[LIMIT], key=key)
    assert ex.status == 401
    assert ex.receive_calls == 0
    assert not ex.app_called
    assert ex.headers["www-authenticate"] == "Bearer"
    assert ex.headers["connection"] == "close"
    error = error_of(ex)
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("app_mode", ["parse_error", "raise"])
def test_a_body_without_a_length_is_cut_off_at_the_cap(app_mode: str) -> None:
    chunks = [1_000] * (CAP // 1_000 + 50)
    ex = run(declared=None, chunks=chunks, key=KEY, app_mode=app_mode)
    assert ex.status == 413
    assert error_of(ex)["code"] == "file_too_large"
    assert ex.app_bytes <= CAP
    assert ex.receive_calls == CAP // 1_000 + 1  # nothing read past the chunk that crossed
    assert b"app" not in ex.body


def test_an_upload_within_the_cap_reaches_the_app_whole() -> None:
    ex = run(declared=CAP, chunks=[CAP // 2, CAP - CAP // 2], key=KEY)
    assert (ex.status, ex.body, ex.app_bytes) == (200, b"app", CAP)


def test_other_methods_and_paths_keep_the_json_body_cap() -> None:
    get = run(method="GET", declared=None, chunks=[10], key=None)
    big_json = run(path="/api/tasks", declared=2 * 1024 * 1024, chunks=[], key=KEY)
    assert get.status == 200  # not an upload: the route (and its auth) decides
    assert big_json.status == 413
    assert big_json.receive_calls == 0
    assert error_of(big_json)["code"] == "request_too_large"
    assert big_json.headers["connection"] == "close"


@settings(max_examples=500, deadline=None)
@given(
    declared=st.none()
    | st.integers(0, 2 * CAP)
    | st.sampled_from([CAP, CAP + 1, 10 * 1024**3, HUGE]),
    chunks=st.lists(st.integers(0, CAP // 3), max_size=8),
    key=st.sampled_from([KEY, None, "vxd_wrong"]),
    app_mode=st.sampled_from(["read", "parse_error", "raise"]),
)
def test_the_guard_answers_by_size_then_credential_then_what_arrives(
    declared: int | None, chunks: list[int], key: str | None, app_mode: str
) -> None:
    ex = run(declared=declared, chunks=chunks or [0], key=key, app_mode=app_mode)
    total = sum(chunks)
    if declared is not None and declared > CAP:
        assert (ex.status, ex.receive_calls, ex.app_called) == (413, 0, False)
    elif key != KEY:
        assert (ex.status, ex.receive_calls, ex.app_called) == (401, 0, False)
    elif total > CAP:
        assert ex.status == 413
        assert ex.app_bytes <= CAP
        assert error_of(ex)["code"] == "file_too_large"
    else:
        assert (ex.status, ex.app_bytes) == (200, total)
    if ex.status != 200:
        assert ex.headers["connection"] == "close"


@settings(max_examples=500, deadline=None)
@given(value=st.binary(max_size=40) | st.integers(0, 10**40).map(lambda n: str(n).encode()))
def test_content_length_parsing_never_raises_and_reads_only_plain_digits(value: bytes) -> None:
    parsed = parse_content_length(value)
    stripped = value.strip(b" \t")
    if stripped.isdigit():
        number = int(stripped)
        assert parsed == (number if number < 10**18 else HUGE)
    else:
        assert parsed is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"0", 0),
        (b"10737418240", 10 * 1024**3),
        (b" 42\t", 42),
        (b"000000000000000000000000000042", 42),
        (b"9" * 5_000, HUGE),  # int() would refuse it (4300-digit limit) and answer 500
        (b"-1", None),
        (b"+5", None),
        (b"1_000", None),
        (b"", None),
        ("٣".encode(), None),  # Arabic-Indic three: a digit to int(), not to HTTP
    ],
)
def test_content_length_examples(value: bytes, expected: int | None) -> None:
    assert parse_content_length(value) == expected
