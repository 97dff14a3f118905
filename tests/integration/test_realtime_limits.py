"""The Realtime edge under abuse (reliability.md R12): a client that stops reading, events too
big or too many, audio too fast, echoes of client input; and endings with a close frame (R4).

Each abusive client runs next to a well-behaved session whose turns must all complete, in
order (counts and ordering, never wall-clock times: speed figures live in bench/).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.integration.conftest import LiveServer, serving
from voxdialog.settings import LimitSettings, RateLimitSettings, Settings
from voxdialog.testing.server import free_port

pytestmark = [pytest.mark.models, pytest.mark.slow]

PCM24_PER_S = 48_000
MANUAL = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


def _settings(data_dir: Path, **limits: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=free_port(),
        rate_limits=RateLimitSettings(per_ip=100_000, ws_per_user=100),
        limits=LimitSettings(**limits),
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = _settings(
        tmp_path_factory.mktemp("limits"),
        ws_stall_close_s=2.0,
        ws_control_burst=1000,  # the slow reader's 100 retrieves are within its budget
        ws_audio_burst_s=120.0,
    )
    with serving(settings) as live:
        yield live


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Default budgets, and sessions that idle out after 5 s and end after 10 s."""
    settings = _settings(tmp_path_factory.mktemp("strict"), idle_timeout_s=5, max_session_s=10)
    with serving(settings) as live:
        yield live


def connect(server: LiveServer, **options: Any) -> Any:
    return websockets.connect(
        f"{server.ws_url}/v1/realtime?model=local-voice",
        additional_headers={"Authorization": f"Bearer {server.api_key}"},
        **options,
    )


async def until(ws: ClientConnection, kind: str, *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Events up to and including the first of type ``kind``."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            events.append(json.loads(await ws.recv()))
            if events[-1]["type"] == kind:
                return events


async def text_turns(server: LiveServer, count: int) -> list[str]:
    """``count`` typed turns on a session of its own; the status of each response, in order."""
    statuses: list[str] = []
    async with connect(server) as ws:
        await until(ws, "session.created")
        for n in range(count):
            item = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"Add task number {n} to my list."}],
            }
            await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
            await ws.send(json.dumps({"type": "response.create"}))
            done = (await until(ws, "response.done", timeout=90))[-1]
            statuses.append(done["response"]["status"])
    return statuses


async def live_ids(server: LiveServer) -> set[str]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        response = await http.get(
            "/api/admin/sessions/live", headers={"Authorization": f"Bearer {server.api_key}"}
        )
        response.raise_for_status()
        return {s["session_id"] for s in response.json()}


async def wait_gone(server: LiveServer, session_id: str, *, within_s: float) -> bool:
    """Whether the session left the live list before the (generous) deadline."""
    async with asyncio.timeout(within_s):
        while session_id in await live_ids(server):
            await asyncio.sleep(0.2)
    return True


def rss_bytes() -> int:
    """This process's resident memory (the server runs in a thread of it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def item_with_audio(ws: ClientConnection, seconds: int) -> str:
    """A user item holding ``seconds`` of committed audio; its id."""
    await ws.send(json.dumps({"type": "session.update", "session": MANUAL}))
    await until(ws, "session.updated")
    tone = b"\x10\x00\xf0\xff" * (PCM24_PER_S // 4)  # one second, 24 kHz PCM16
    for _ in range(seconds):
        audio = base64.b64encode(tone).decode()
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
    await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    committed = (await until(ws, "input_audio_buffer.committed"))[-1]
    return str(committed["item_id"])


# --- item 1: a client that stops reading ------------------------------------------------------


async def test_a_client_that_stops_reading_is_closed_and_others_keep_their_turns(
    server: LiveServer,
) -> None:
    # max_queue=1: the client library itself buffers at most one message, then stops reading;
    # no pings of its own (a raw client), so only the server can end this.
    async with connect(server, max_queue=1, ping_interval=None) as slow:
        created = await until(slow, "session.created")
        session_id = created[-1]["session"]["id"]
        item_id = await item_with_audio(slow, 30)
        # The other session's turns use Whisper and Piper, whose first runs grow their
        # arenas: run one before measuring, so only the slow reader's memory is counted.
        await text_turns(server, 1)
        before = rss_bytes()
        retrieve = json.dumps({"type": "conversation.item.retrieve", "item_id": item_id})
        for _ in range(100):  # ~1.9 MB of answer each, never read
            await slow.send(retrieve)
        statuses = await text_turns(server, 3)
        grown = rss_bytes() - before
        assert await wait_gone(server, session_id, within_s=60)
    assert statuses == ["completed", "completed", "completed"]
    # Unbounded, the queue held every answer (~190 MB); bounded, a few answers at most.
    assert grown < 80 * 1024 * 1024, f"memory grew {grown / 1e6:.0f} MB"


# --- item 6: events too big, too many, too fast; echoes -----------------------------------------


async def closing(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every event until the server closes; and the close code it sent (None: no frame)."""
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(30):
            while True:
                events.append(json.loads(await ws.recv()))
    except websockets.ConnectionClosed:
        pass
    rcvd = ws.protocol.close_rcvd
    return events, rcvd.code if rcvd is not None else None


def error_codes(events: list[dict[str, Any]]) -> list[str]:
    return [e["error"]["code"] for e in events if e["type"] == "error"]


async def test_an_unknown_event_type_is_echoed_only_as_a_short_prefix(server: LiveServer) -> None:
    async with connect(server) as ws:
        await until(ws, "session.created")
        huge = "x" * 20_000
        await ws.send(json.dumps({"type": huge, "event_id": "e" * 20_000}))
        error = (await until(ws, "error"))[-1]["error"]
    assert error["code"] == "invalid_value"
    assert len(error["message"]) < 200
    assert len(error["event_id"]) < 200
    assert error["message"].startswith("Invalid value: 'xxx")


async def test_a_control_event_over_64_kib_is_refused_with_1009(server: LiveServer) -> None:
    async with connect(server) as ws:
        await until(ws, "session.created")
        session = {"type": "realtime", "instructions": "Be brief. " * 10_000}
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        events, code = await closing(ws)
    assert error_codes(events) == ["message_too_large"]
    assert "session.updated" not in [e["type"] for e in events]
    assert code == 1009


async def test_an_append_over_the_event_cap_is_refused_and_the_session_goes_on(
    server: LiveServer,
) -> None:
    async with connect(server) as ws:
        await until(ws, "session.created")
        audio = "A" * (1536 * 1024)  # 1.5 MiB: above the 1 MiB event cap, below the frame cap
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
        error = (await until(ws, "error"))[-1]["error"]
        await ws.send(json.dumps({"type": "session.update", "session": MANUAL}))
        await until(ws, "session.updated")
    assert error["code"] == "message_too_large"


async def test_a_frame_over_the_frame_limit_closes_the_socket_with_1009(
    server: LiveServer,
) -> None:
    async with connect(server, max_size=None) as ws:
        await until(ws, "session.created")
        audio = "A" * (3 * 1024 * 1024)
        # The server may close while the frame is still going out: the send then fails too.
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
        _, code = await closing(ws)
    assert code == 1009


async def test_a_control_flood_is_closed_with_1008_and_others_keep_their_turns(
    strict: LiveServer,
) -> None:
    async def flood() -> tuple[list[dict[str, Any]], int | None]:
        async with connect(strict) as ws:
            await until(ws, "session.created")
            cancel = json.dumps({"type": "response.cancel"})
            for _ in range(300):
                try:
                    await ws.send(cancel)
                except websockets.ConnectionClosed:
                    break
            return await closing(ws)

    (events, code), statuses = await asyncio.gather(flood(), text_turns(strict, 2))
    codes = error_codes(events)
    assert codes[-1] == "rate_limit_exceeded"
    assert codes.count("response_cancel_not_active") == 100  # the burst, each answered
    assert code == 1008
    assert statuses == ["completed", "completed"]


async def test_audio_faster_than_twice_real_time_is_closed_with_1008(strict: LiveServer) -> None:
    async with connect(strict) as ws:
        await until(ws, "session.created")
        await ws.send(json.dumps({"type": "session.update", "session": MANUAL}))
        second = base64.b64encode(b"\x00\x00" * 24_000).decode()
        append = json.dumps({"type": "input_audio_buffer.append", "audio": second})
        for _ in range(60):  # a minute of audio at once; the burst allowance is 30 s
            try:
                await ws.send(append)
            except websockets.ConnectionClosed:
                break
        events, code = await closing(ws)
    assert error_codes(events) == ["rate_limit_exceeded"]
    assert code == 1008


# --- item 12: the server's own endings close with a code -------------------------------------


async def test_an_idle_session_gets_its_error_then_a_close_frame(strict: LiveServer) -> None:
    async with connect(strict) as ws:
        await until(ws, "session.created")
        events, code = await closing(ws)
    assert error_codes(events) == ["session_idle_timeout"]
    assert code == 1000


async def test_a_session_at_its_maximum_duration_gets_its_error_then_a_close_frame(
    strict: LiveServer,
) -> None:
    async with connect(strict) as ws:
        await until(ws, "session.created")

        async def keep_talking() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:  # an event every 2 s: never idle
                    await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
                    await asyncio.sleep(2)

        talker = asyncio.create_task(keep_talking())
        events, code = await closing(ws)
        talker.cancel()
    assert error_codes(events) == ["session_expired"]
    assert code == 1000
