"""Browser tests: Debian's Chromium (driven by Playwright) against a live server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext

from tests.browser.talk import LEAD_S, TAIL_S, OpenTalkPage, TalkPage, server_bearer
from tests.integration.conftest import LiveServer, live_server  # noqa: F401 -- the fixture
from voxdialog.testing.browser import (
    TALK_PAGE_PROBE,
    MicPart,
    chromium_with_mic,
    host_name_args,
    kept_screenshots,
    require_chromium,
    write_mic_wav,
)

#: Screenshots of the last run, kept for people and CI artifact upload (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """``/usr/bin/chromium``; CI must have it (``scripts/setup`` installs it)."""
    return require_chromium()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A folder for the test's screenshots, copied to ``test-artifacts/browser/`` afterwards."""
    with kept_screenshots(request.node.name, tmp_path / "artifacts", ARTIFACTS) as folder:
        yield folder


async def reset_settings(server: LiveServer) -> None:
    """Forget the local admin's saved choices (agent, push-to-talk) from an earlier test."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        response = await http.put("/api/users/me/settings", json={}, headers=server_bearer(server))
    response.raise_for_status()


@pytest.fixture
async def talk_page(
    chromium: Path,
    live_server: LiveServer,  # noqa: F811 -- the fixture imported above
    screenshots: Path,
    tmp_path: Path,
) -> AsyncIterator[OpenTalkPage]:
    """Opens the talk page in a browser whose microphone says the given script."""
    opened: list[TalkPage] = []
    port = urlsplit(live_server.base_url).port
    assert port is not None
    async with AsyncExitStack() as browsers:

        async def open_with(
            parts: Sequence[MicPart],
            *,
            start: bool = True,
            host: str | None = None,
            prepare: Callable[[BrowserContext], Awaitable[None]] | None = None,
        ) -> TalkPage:
            await reset_settings(live_server)
            wav = write_mic_wav(
                tmp_path / f"microphone-{len(opened)}.wav", [LEAD_S, *parts, TAIL_S]
            )
            extra = host_name_args(host, port) if host else []
            context = await browsers.enter_async_context(chromium_with_mic(wav, extra_args=extra))
            await context.add_init_script(TALK_PAGE_PROBE)
            if prepare is not None:
                await prepare(context)
            page = context.pages[0] if context.pages else await context.new_page()
            base_url = f"http://{host}:{port}" if host else live_server.base_url
            talk = TalkPage(page, screenshots, base_url)
            opened.append(talk)
            await talk.open()
            if start:
                await talk.shot("01-loaded")
                await talk.start()
            return talk

        yield open_with
        for talk in opened:
            await talk.shot("99-final")
    for talk in opened:
        assert talk.errors == [], "the page threw"
