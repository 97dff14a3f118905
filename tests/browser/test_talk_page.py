"""The talk page in a real Chromium: speak through a fake microphone, hear and read the reply.

The microphone plays a WAV made from the server's own text-to-speech (the shared recordings
hold no task commands). Chromium plays it once from the moment the page opens the microphone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.integration.conftest import LiveServer
from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.wav import read_wav
from voxdialog.testing.browser import (
    READ_PROBE,
    TALK_PAGE_PROBE,
    MicPart,
    chromium_with_mic,
    write_mic_wav,
)

pytestmark = [pytest.mark.models, pytest.mark.slow]

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

    def __init__(self, page: Page, screenshots: Path) -> None:
        self.page = page
        self.screenshots = screenshots
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    async def start(self, base_url: str) -> None:
        await self.page.goto(f"{base_url}/")
        await self.shot("01-loaded")
        await self.page.click("#talk")
        # The probe keeps every mode shown, so a short "listening" cannot be missed.
        await self.page.wait_for_function(
            "() => window.__voxdialogProbe.modes.includes('listening')", timeout=STEP_MS
        )

    async def wait_for(self, selector: str, count: int = 1) -> None:
        """Until at least ``count`` elements match ``selector``."""
        await self.page.wait_for_function(
            "([selector, count]) => document.querySelectorAll(selector).length >= count",
            arg=[selector, count],
            timeout=STEP_MS,
        )

    async def texts(self, selector: str) -> list[str]:
        return await self.page.locator(f"{selector} .msg-text").all_inner_texts()

    async def probe(self) -> dict[str, Any]:
        seen: dict[str, Any] = await self.page.evaluate(READ_PROBE)
        return seen

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=self.screenshots / f"{name}.png", full_page=True)


OpenTalkPage = Callable[[Sequence[MicPart]], Awaitable[TalkPage]]


@pytest.fixture
async def talk_page(
    chromium: Path, live_server: LiveServer, screenshots: Path, tmp_path: Path
) -> AsyncIterator[OpenTalkPage]:
    """Opens the talk page, started, in a browser whose microphone says the given script."""
    opened: list[TalkPage] = []
    async with AsyncExitStack() as browsers:

        async def open_with(parts: Sequence[MicPart]) -> TalkPage:
            wav = write_mic_wav(
                tmp_path / f"microphone-{len(opened)}.wav", [LEAD_S, *parts, TAIL_S]
            )
            context = await browsers.enter_async_context(chromium_with_mic(wav))
            await context.add_init_script(TALK_PAGE_PROBE)
            page = context.pages[0] if context.pages else await context.new_page()
            talk = TalkPage(page, screenshots)
            opened.append(talk)
            await talk.start(live_server.base_url)
            return talk

        yield open_with
        for talk in opened:
            await talk.shot("99-final")
    for talk in opened:
        assert talk.errors == [], "the page threw"


async def test_a_spoken_command_is_transcribed_answered_and_played(
    live_server: LiveServer, talk_page: OpenTalkPage
) -> None:
    command = await speech(live_server, "Add a task to call the dentist on Friday.")
    page = await talk_page([command])

    await page.wait_for(USER_MESSAGES)
    await page.wait_for(f"{ASSISTANT_MESSAGES}:not(.is-pending)")
    await page.shot("02-answered")
    # Playback ran to its end and the page went back to listening.
    await page.page.wait_for_function(
        "() => window.__voxdialogProbe.modes.includes('speaking')"
        " && document.body.dataset.mode === 'listening'",
        timeout=STEP_MS,
    )
    (said,) = await page.texts(USER_MESSAGES)
    (answer,) = await page.texts(ASSISTANT_MESSAGES)
    assert "dentist" in said.lower()
    assert "dentist" in answer.lower()
    seen = await page.probe()
    assert sum(seen["played"].values()) >= HALF_SECOND
    assert seen["flushes"] == 0  # nobody talked over it


async def test_talking_over_the_long_help_answer_stops_it(
    live_server: LiveServer, talk_page: OpenTalkPage
) -> None:
    question = await speech(live_server, "What can you do?")
    interruption = await speech(live_server, "Add a task to buy milk.")
    # The help answer runs for many seconds; the second command starts well inside it.
    page = await talk_page([question, 4.0, interruption])

    await page.wait_for(f"{ASSISTANT_MESSAGES}.is-interrupted")
    await page.shot("02-interrupted")
    seen = await page.probe()
    assert seen["flushes"] >= 1
    cut_at = seen["playedAtFlush"]
    assert cut_at, "playback was flushed with nothing played"
    interrupted = page.page.locator(f"{ASSISTANT_MESSAGES}.is-interrupted").first
    # Raw text: CSS shows the note in capitals.
    assert await interrupted.locator(".msg-note").text_content() == "interrupted"
    assert "to-do list" in (await interrupted.locator(".msg-text").text_content() or "").lower()

    # The interruption is itself answered, and the interrupted reply never plays again.
    await page.wait_for(USER_MESSAGES, count=2)
    await page.wait_for(f"{ASSISTANT_MESSAGES}:not(.is-pending)", count=2)
    await page.page.wait_for_function(
        "() => document.body.dataset.mode === 'listening'", timeout=STEP_MS
    )
    await page.shot("03-answered")
    said = await page.texts(USER_MESSAGES)
    answers = await page.texts(ASSISTANT_MESSAGES)
    assert "what can you do" in said[0].lower()
    assert "milk" in said[1].lower()
    assert "milk" in answers[1].lower()
    played = (await page.probe())["played"]
    for item_id, samples in cut_at.items():
        assert played[item_id] == samples, "the interrupted reply kept playing"
    assert set(played) - set(cut_at), "the answer to the interruption did not play"
