"""The talk page's connection state machine (``connection.js``) in a real Chromium.

No server and no models: the test plays the Realtime server through Playwright's WebSocket
routing and moves the page's clock by hand, so every back-off pause is exact. The module is
served from the package's static folder under a made-up origin.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import BrowserContext, Page, Route, WebSocketRoute

from voxdialog.testing.browser import chromium_with_mic, write_mic_wav
from voxdialog.web import STATIC_DIR

ORIGIN = "http://voxdialog.test"
#: A blank page that loads the module and records what the connection tells its listeners.
HARNESS = """<!doctype html><meta charset="utf-8"><script type="module">
import { Connection } from "/static/connection.js";
window.seen = { states: [], details: [], messages: [], tickets: 0 };
window.connection = new Connection({
  ticket: async (agentId) => `ticket-${++window.seen.tickets}-${agentId}`,
  model: "local-voice",
  keepAlive: () => ({ type: "input_audio_buffer.clear" }),
});
connection.addEventListener("statechange", (event) => {
  seen.states.push(event.detail.state);
  seen.details.push(event.detail);
});
connection.addEventListener("message", (event) => seen.messages.push(event.detail.type));
window.ready = true;
</script>"""
#: The first reconnect waits 0.5 s ± 20%: never before 400 ms, always by 600 ms.
FIRST_PAUSE_MIN_MS = 400
FIRST_PAUSE_MAX_MS = 600
RECONNECT_TRIES = 8
#: Longer than the whole back-off series (about 40 s).
ALL_PAUSES_MS = 60_000
KEEPALIVE_MS = 60_000


class FakeServer:
    """The Realtime endpoint as the test plays it: every socket the page opens, in order."""

    def __init__(self) -> None:
        self.sockets: list[WebSocketRoute] = []
        self.received: list[list[dict[str, Any]]] = []
        #: Close each new socket at once with this (code, reason), as a busy server refuses.
        self.refuse: tuple[int, str] | None = None
        self.closing: list[asyncio.Task[None]] = []
        #: The close code each socket the page closed itself sent, by socket index.
        self.closed_by_page: dict[int, int | None] = {}

    def accept(self, socket: WebSocketRoute) -> None:
        inbox: list[dict[str, Any]] = []
        self.sockets.append(socket)
        self.received.append(inbox)
        index = len(self.sockets) - 1
        socket.on_message(lambda message: inbox.append(json.loads(message)))
        socket.on_close(lambda code, _reason: self.closed_by_page.setdefault(index, code))
        if self.refuse is not None:
            code, reason = self.refuse
            self.closing.append(asyncio.create_task(socket.close(code=code, reason=reason)))

    def query(self, index: int) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.sockets[index].url).query)

    async def until_sockets(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.sockets) < count:
                await asyncio.sleep(0.02)

    async def session_created(self, index: int, session_id: str) -> None:
        event = {"type": "session.created", "session": {"id": session_id}}
        self.sockets[index].send(json.dumps(event))

    async def end(self, index: int, code: str, close_code: int, reason: str) -> None:
        """Send the error the server sends before it closes, then close."""
        error = {"type": "error", "error": {"type": "invalid_request_error", "code": code}}
        self.sockets[index].send(json.dumps(error))
        await self.sockets[index].close(code=close_code, reason=reason)


@pytest.fixture
async def browser(chromium: Path, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    wav = write_mic_wav(tmp_path / "silence.wav", [0.5])
    async with chromium_with_mic(wav) as context:
        yield context


@pytest.fixture
async def server(browser: BrowserContext) -> FakeServer:
    fake = FakeServer()
    await browser.route_web_socket(re.compile(r".*/v1/realtime.*"), fake.accept)
    return fake


@pytest.fixture
async def page(browser: BrowserContext, server: FakeServer) -> AsyncIterator[Page]:
    async def serve(route: Route) -> None:
        path = urlsplit(route.request.url).path
        if path.startswith("/static/"):
            await route.fulfill(path=STATIC_DIR / path.removeprefix("/static/"))
        else:
            await route.fulfill(body=HARNESS, content_type="text/html")

    await browser.route(f"{ORIGIN}/**", serve)
    tab = await browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # Time stands still until the test moves it (an installed clock would run on by itself).
    await tab.clock.install(time=0)
    await tab.clock.pause_at(1000)
    await tab.goto(f"{ORIGIN}/")
    await tab.wait_for_function("() => window.ready")
    yield tab
    assert errors == [], "the page threw"


async def states(page: Page) -> list[str]:
    seen: list[str] = await page.evaluate("() => window.seen.states")
    return seen


async def until_state(page: Page, state: str) -> None:
    await page.wait_for_function("(state) => connection.state === state", arg=state, timeout=10_000)


async def until_transitions(page: Page, count: int) -> None:
    await page.wait_for_function("(n) => seen.states.length >= n", arg=count, timeout=10_000)


async def last_detail(page: Page) -> dict[str, Any]:
    detail: dict[str, Any] = await page.evaluate("() => window.seen.details.at(-1)")
    return detail


async def open_session(page: Page, server: FakeServer, session_id: str = "sess_1") -> None:
    """Start a new conversation and let the server create its session."""
    await page.evaluate("() => { connection.start({ agentId: 'default' }); }")
    await server.until_sockets(1)
    await server.session_created(0, session_id)
    await until_state(page, "open")


async def test_a_lost_socket_comes_back_to_the_same_conversation_after_a_pause(
    page: Page, server: FakeServer
) -> None:
    await open_session(page, server)
    first = server.query(0)
    assert "conversation" not in first
    assert first["ticket"] == ["ticket-1-default"]

    await server.sockets[0].close(code=1012, reason="the network went away")
    await until_state(page, "reconnecting")
    await page.clock.run_for(FIRST_PAUSE_MIN_MS - 50)
    await asyncio.sleep(0.2)
    assert len(server.sockets) == 1, "reconnected without a pause"
    await page.clock.run_for(FIRST_PAUSE_MAX_MS - FIRST_PAUSE_MIN_MS + 50)
    await server.until_sockets(2)
    again = server.query(1)
    assert again["conversation"] == ["sess_1"]
    assert again["ticket"] == ["ticket-2-default"], "a ticket works once: each socket needs one"

    await server.session_created(1, "sess_1")
    await until_state(page, "open")
    assert await states(page) == ["connecting", "open", "reconnecting", "open"]
    assert (await last_detail(page))["reconnected"] is True


@pytest.mark.parametrize("close_reason", ["session_taken_over", ""])
async def test_a_conversation_taken_over_elsewhere_waits_for_the_person(
    page: Page, server: FakeServer, close_reason: str
) -> None:
    await open_session(page, server)
    # The error alone says it when a proxy drops the close reason.
    await server.end(0, "session_taken_over", 4009, close_reason)
    await until_state(page, "taken_over")
    await page.clock.run_for(ALL_PAUSES_MS)
    await asyncio.sleep(0.2)
    assert len(server.sockets) == 1, "it took the conversation back by itself"
    assert await page.evaluate("() => connection.busy") is False

    # The Reconnect button: the same conversation, brought back on purpose.
    await page.evaluate(
        "() => { connection.start({ conversationId: connection.conversationId,"
        " agentId: connection.agentId, resume: true }); }"
    )
    await server.until_sockets(2)
    assert server.query(1)["conversation"] == ["sess_1"]
    await server.session_created(1, "sess_1")
    await until_state(page, "open")
    assert await states(page) == ["connecting", "open", "taken_over", "connecting", "open"]
    assert (await last_detail(page))["reconnected"] is True


async def test_reconnecting_gives_up_after_the_last_try(page: Page, server: FakeServer) -> None:
    await open_session(page, server)
    server.refuse = (4009, "invalid_request_error.conversation_busy")
    await server.sockets[0].close(code=1012)
    for tries in range(1, RECONNECT_TRIES + 1):
        # The refusal has come back and the pause before this try is set: only then move the
        # clock, past the longest pause.
        await until_transitions(page, 2 + tries)
        await page.clock.run_for(10_000)
        await server.until_sockets(1 + tries)
    await until_state(page, "closed")
    assert (await last_detail(page))["why"] == "gave_up"
    await page.clock.run_for(ALL_PAUSES_MS)
    await asyncio.sleep(0.2)
    assert len(server.sockets) == 1 + RECONNECT_TRIES
    assert await states(page) == [
        "connecting",
        "open",
        *["reconnecting"] * RECONNECT_TRIES,
        "closed",
    ]


async def test_the_first_socket_of_a_new_conversation_is_not_retried(
    page: Page, server: FakeServer
) -> None:
    server.refuse = (1013, "server_error.session_limit_reached")
    await page.evaluate("() => { connection.start({ agentId: 'default' }); }")
    await until_state(page, "closed")
    detail = await last_detail(page)
    assert detail["why"] == "refused"
    assert detail["code"] == 1013
    await page.clock.run_for(ALL_PAUSES_MS)
    await asyncio.sleep(0.2)
    assert len(server.sockets) == 1


async def test_keep_alive_while_open_and_nothing_after_a_stop(
    page: Page, server: FakeServer
) -> None:
    await open_session(page, server)
    await page.clock.run_for(KEEPALIVE_MS)
    await asyncio.sleep(0.2)
    assert {"type": "input_audio_buffer.clear"} in server.received[0]

    await page.evaluate("() => connection.stop()")
    assert await page.evaluate("() => connection.state") == "idle"
    async with asyncio.timeout(10):
        while 0 not in server.closed_by_page:
            await asyncio.sleep(0.02)
    assert server.closed_by_page[0] == 1000
    sent = len(server.received[0])
    await page.clock.run_for(2 * KEEPALIVE_MS)
    await asyncio.sleep(0.2)
    assert len(server.received[0]) == sent, "a stopped connection still talks"
    assert len(server.sockets) == 1, "a stop was taken for a lost connection"
    assert await states(page) == ["connecting", "open", "idle"]
