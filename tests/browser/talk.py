"""The talk page in a browser, as the browser tests drive it: open, start, wait, read, shoot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
from playwright.async_api import BrowserContext, Page

from tests.integration.conftest import LiveServer
from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.wav import read_wav
from voxdialog.testing.browser import READ_PROBE, MicPart

#: Silence before the first words. The microphone starts before the page has its token and
#: socket, and audio sent before ``session.created`` is dropped: connecting must fit in here.
LEAD_S = 4.0  # the page may take a while to open its socket on a loaded machine
#: Silence after the last words: time to end the turn and hear the whole reply.
TAIL_S = 3.0
#: Generous bounds for one step of a conversation (a busy CI machine runs the models).
STEP_MS = 45_000
#: 24 kHz samples in half a second: reply audio that really played, not a click.
HALF_SECOND = 12_000

USER_MESSAGES = "#messages li.msg--user:not(.is-pending)"
ASSISTANT_MESSAGES = "#messages li.msg--assistant"


async def speech(server: LiveServer, text: str) -> AudioChunk:
    """``text`` spoken by the server's own ``/v1/audio/speech``, as a WAV clip."""
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=60,
    ) as http:
        response = await http.post(
            "/v1/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav"},
        )
    response.raise_for_status()
    return read_wav(response.content)


class TalkPage:
    """The page at ``/`` in a browser whose microphone plays a script, and what it saw."""

    def __init__(self, page: Page, screenshots: Path, base_url: str) -> None:
        self.page = page
        self.screenshots = screenshots
        self.base_url = base_url
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    async def open(self) -> None:
        """Load the page (on localhost it signs in by itself)."""
        await self.page.goto(f"{self.base_url}/")

    async def start(self) -> None:
        """Press the talk button and wait until the page listens."""
        await self.page.click("#talk")
        # The probe keeps every mode shown, so a short "listening" cannot be missed.
        await self.until("() => window.__voxdialogProbe.modes.includes('listening')")

    async def until(self, condition: str, arg: Any = None) -> None:
        """Until the JavaScript function ``condition`` (given ``arg``) returns something true."""
        await self.page.wait_for_function(condition, arg=arg, timeout=STEP_MS)

    async def wait_for(self, selector: str, count: int = 1) -> None:
        """Until at least ``count`` elements match ``selector``."""
        await self.until(
            "([selector, count]) => document.querySelectorAll(selector).length >= count",
            [selector, count],
        )

    async def texts(self, selector: str) -> list[str]:
        return await self.page.locator(f"{selector} .msg-text").all_inner_texts()

    async def probe(self) -> dict[str, Any]:
        seen: dict[str, Any] = await self.page.evaluate(READ_PROBE)
        return seen

    async def exposed(self) -> dict[str, Any]:
        """``window.voxdialog``: the conversation id, the phase and the stats the page keeps."""
        found: dict[str, Any] = await self.page.evaluate(
            "() => JSON.parse(JSON.stringify(window.voxdialog))"
        )
        return found

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=self.screenshots / f"{name}.png", full_page=True)


class OpenTalkPage(Protocol):
    """The ``talk_page`` fixture: a browser on the talk page whose microphone says ``parts``."""

    def __call__(
        self,
        parts: Sequence[MicPart],
        *,
        start: bool = True,
        host: str | None = None,
        prepare: Callable[[BrowserContext], Awaitable[None]] | None = None,
    ) -> Awaitable[TalkPage]:
        """Open (and by default start) the page.

        Args:
            parts: What the microphone says after ``LEAD_S`` of silence (then ``TAIL_S``).
            start: Press the talk button and wait for "listening".
            host: Open the page under this host name (mapped to 127.0.0.1) instead of
                127.0.0.1: a page that is not on a loopback name.
            prepare: Called with the browser context before the page loads (routes).
        """
        ...


def server_bearer(server: LiveServer) -> dict[str, str]:
    """The local admin's API key as a header (the user the page on localhost signs in as)."""
    return {"Authorization": f"Bearer {server.api_key}"}


async def conversation(server: LiveServer, conversation_id: str, token: str) -> dict[str, Any]:
    """``GET /api/conversations/{id}`` as the holder of ``token``."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        response = await http.get(
            f"/api/conversations/{conversation_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def said(messages: list[dict[str, Any]], role: str) -> list[str]:
    """The texts of a stored conversation's messages of ``role``, in order."""
    return [message["text"] for message in messages if message["role"] == role]
