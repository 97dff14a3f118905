"""The ``/admin`` page in a real Chromium: sign in, watch a live session, screenshot it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from playwright.async_api import BrowserContext, Page

from tests.integration.admin.conftest import Account, Tenants
from tests.integration.conftest import LiveServer
from voxdialog.testing.browser import (
    chromium_with_mic,
    kept_screenshots,
    require_chromium,
    write_mic_wav,
)

pytestmark = pytest.mark.models

#: Screenshots of the last run, for people and CI artifacts (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "admin"
#: Generous: a busy machine runs the models next to the browser.
STEP_MS = 30_000


@pytest.fixture
def chromium() -> Path:
    """``/usr/bin/chromium``; CI must have it (``scripts/setup`` installs it)."""
    return require_chromium()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A folder for the test's screenshots, copied to ``test-artifacts/admin/`` afterwards."""
    with kept_screenshots(request.node.name, tmp_path / "shots", ARTIFACTS) as folder:
        yield folder


@pytest.fixture
async def browser(chromium: Path, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A headless Chromium (its microphone is silent: the admin page never uses it)."""
    wav = write_mic_wav(tmp_path / "silence.wav", [0.5])
    async with chromium_with_mic(wav, viewport=(1360, 900)) as context:
        yield context


async def open_admin(context: BrowserContext, server: LiveServer) -> tuple[Page, list[str]]:
    """A new tab on ``/admin``, with the errors the page throws collected."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{server.base_url}/admin")
    return page, errors


async def rows(page: Page, body_id: str, count: int) -> None:
    """Until the table body ``body_id`` has at least ``count`` rows."""
    await page.wait_for_function(
        "([id, count]) => document.querySelectorAll(`#${id} tr`).length >= count",
        arg=[body_id, count],
        timeout=STEP_MS,
    )


async def sign_in(page: Page, account: Account) -> None:
    await page.fill("#login-email", account.email)
    await page.fill("#login-password", account.password)
    await page.click("#login-form button[type=submit]")


async def test_the_operator_signs_in_with_the_api_key_and_sees_a_live_session(
    admin_server: LiveServer, tenants: Tenants, browser: BrowserContext, screenshots: Path
) -> None:
    talker = tenants.admin_a
    api = AsyncOpenAI(base_url=f"{admin_server.base_url}/v1", api_key=talker.access_token)
    async with api.realtime.connect(model="local-voice") as conn:
        assert (await conn.recv()).type == "session.created"
        page, errors = await open_admin(browser, admin_server)
        await page.screenshot(path=screenshots / "01-sign-in.png", full_page=True)
        await page.fill("#admin-key", admin_server.api_key)
        await page.click("#key-form button[type=submit]")
        await rows(page, "sessions-rows", 1)
        await rows(page, "latency-rows", 5)
        await rows(page, "tenant-rows", 3)
        sessions = await page.inner_text("#sessions-rows")
        who = await page.inner_text("#who")
        stages = await page.inner_text("#stages")
        await page.screenshot(path=screenshots / "02-dashboard.png", full_page=True)
    assert talker.email in sessions
    assert "listening" in sessions
    assert who == "API key"
    assert "STT" in stages
    assert errors == []


async def test_a_tenant_admin_signs_in_and_a_member_is_turned_away(
    admin_server: LiveServer, tenants: Tenants, browser: BrowserContext, screenshots: Path
) -> None:
    member_page, member_errors = await open_admin(browser, admin_server)
    await sign_in(member_page, tenants.member_a)
    await member_page.wait_for_selector("#signin-error:not([hidden])", timeout=STEP_MS)
    refusal = await member_page.inner_text("#signin-error")

    admin_page, admin_errors = await open_admin(browser, admin_server)
    await sign_in(admin_page, tenants.admin_b)
    await rows(admin_page, "user-rows", 1)
    await rows(admin_page, "tenant-rows", 1)
    tenant_rows = await admin_page.locator("#tenant-rows tr").count()
    users = await admin_page.inner_text("#user-rows")
    who = await admin_page.inner_text("#who")
    await admin_page.screenshot(path=screenshots / "tenant-admin.png", full_page=True)

    assert "not an admin" in refusal
    assert tenant_rows == 1
    assert tenants.admin_b.email in users
    assert tenants.admin_a.email not in users
    assert who == tenants.admin_b.email
    assert member_errors == admin_errors == []
