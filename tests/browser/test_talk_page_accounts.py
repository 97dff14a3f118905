"""The talk page's accounts side in a real Chromium: agents, signing in, history.

(The ``talk_page`` fixture resets the local admin's saved choices before each page opens.)
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.browser.talk import (
    ASSISTANT_MESSAGES,
    USER_MESSAGES,
    OpenTalkPage,
    conversation,
    said,
    server_bearer,
    speech,
)
from tests.integration.conftest import LiveServer
from voxdialog.testing.seed import new_email, new_password

pytestmark = [pytest.mark.models, pytest.mark.slow]

#: A name that is not a loopback name: the page is opened as if over the network.
NETWORK_HOST = "voxdialog.test"


async def test_the_chosen_agent_greets_binds_the_session_and_is_remembered(
    live_server: LiveServer, talk_page: OpenTalkPage
) -> None:
    greeting = "Hello, I am your planning coach."
    async with httpx.AsyncClient(
        base_url=live_server.base_url, headers=server_bearer(live_server), timeout=30
    ) as http:
        created = await http.post(
            "/api/agents", json={"name": f"Coach {uuid.uuid4().hex[:6]}", "greeting": greeting}
        )
        assert created.status_code == 201, created.text
        agent: dict[str, Any] = created.json()
        await choose_and_talk_to(live_server, talk_page, agent, greeting, http)


async def choose_and_talk_to(
    server: LiveServer,
    talk_page: OpenTalkPage,
    agent: dict[str, Any],
    greeting: str,
    http: httpx.AsyncClient,
) -> None:
    page = await talk_page([], start=False)  # a silent microphone: the agent speaks first
    await page.until(
        "(id) => [...document.querySelectorAll('#agent option')].some(o => o.value === id)",
        agent["id"],
    )
    async with page.page.expect_response(
        lambda r: r.url.endswith("/api/users/me/settings") and r.request.method == "PUT"
    ) as saved:
        await page.page.select_option("#agent", agent["id"])
    assert (await saved.value).ok
    settings = (await http.get("/api/users/me/settings")).json()
    assert settings["default_agent"] == agent["id"]

    await page.start()
    await page.wait_for(f"{ASSISTANT_MESSAGES}:not(.is-pending)")
    await page.until("() => document.body.dataset.playing === 'false'")
    await page.shot("02-greeted")
    assert await page.texts(ASSISTANT_MESSAGES) == [greeting]
    assert await page.page.is_disabled("#agent"), "the agent changed during a conversation"
    conversation_id = (await page.exposed())["conversationId"]
    listed = (await http.get("/api/conversations")).json()["data"]
    assert [c["agent"] for c in listed if c["id"] == conversation_id] == [agent["id"]]
    # The microphones the browser offers can be chosen next to the level meter; choosing
    # another one re-opens the capture while the conversation goes on.
    choices = await page.page.eval_on_selector_all(
        "#microphone option", "options => options.map(o => o.value).filter(Boolean)"
    )
    assert choices, "no microphone listed"
    in_use = (await page.exposed())["microphone"]
    other = next(choice for choice in reversed(choices) if choice != in_use)
    await page.page.select_option("#microphone", other)
    await page.until("(id) => window.voxdialog.microphone === id", other)
    assert (await page.exposed())["phase"] == "live"

    # A new visit starts with the same agent.
    await page.page.click("#talk")
    await page.page.reload()
    await page.until("(id) => document.getElementById('agent').value === id", agent["id"])


async def test_signing_in_over_the_network_then_history_and_continuing(
    live_server: LiveServer, talk_page: OpenTalkPage
) -> None:
    email, password = new_email("browser"), new_password()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        registered = await http.post(
            "/api/auth/register",
            json={"email": email, "password": password, "display_name": "Robin"},
        )
    assert registered.status_code == 201, registered.text
    command = await speech(live_server, "Add a task to book the flights.")
    page = await talk_page([command], start=False, host=NETWORK_HOST)

    # Not on localhost: no silent sign-in, the form asks; a wrong password is refused.
    await page.page.wait_for_selector("#login-form", state="visible")
    assert await page.page.is_hidden("#local-signin")
    await page.page.fill("#email", email)
    await page.page.fill("#password", "not the password")
    await page.page.click("#login-submit")
    await page.page.wait_for_selector("#login-error", state="visible")
    await page.shot("01-sign-in-refused")
    await page.page.fill("#password", password)
    await page.page.click("#login-submit")
    await page.page.wait_for_selector("#talk", state="visible")
    assert await page.page.text_content("#user-name") == "Robin"
    tokens = await page.page.evaluate("() => JSON.parse(sessionStorage.getItem('voxdialog.auth'))")

    await page.start()
    await page.wait_for(USER_MESSAGES)
    await page.wait_for(f"{ASSISTANT_MESSAGES}:not(.is-pending)")
    conversation_id = (await page.exposed())["conversationId"]
    row = f'#history-list [data-conversation-id="{conversation_id}"]'
    await page.until(
        "(row) => document.querySelector(row)?.textContent.toLowerCase().includes('flights')", row
    )
    await page.shot("02-listed")

    # Ended, then read back from the history: read-only, with a way to go on.
    await page.page.click("#talk")
    await page.until("() => window.voxdialog.phase === 'idle'")
    await page.page.click(row)
    await page.page.wait_for_selector("#archive li.msg--assistant", state="visible")
    await page.shot("03-history")
    archived = await page.page.locator("#archive li.msg").all_inner_texts()
    assert any("flights" in text.lower() for text in archived)
    assert await page.page.is_hidden("#messages")
    assert await page.page.is_disabled("#message")
    stored = await conversation(live_server, conversation_id, tokens["access_token"])
    assert "flights" in said(stored["messages"], "user")[0].lower()

    await page.page.click("#continue")
    await page.until(
        "(id) => window.voxdialog.phase === 'live' && window.voxdialog.conversationId === id",
        conversation_id,
    )
    await page.shot("04-continued")
    continued = await page.texts(ASSISTANT_MESSAGES)
    assert any("flights" in text.lower() for text in continued), "the earlier turns are gone"
    assert (await page.exposed())["stats"]["reconnects"] == 0

    # Signing out ends the sign-in on the server too.
    await page.page.click("#sign-out")
    await page.page.wait_for_selector("#login-form", state="visible")
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        me = await http.get(
            "/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    assert me.status_code == 401
    assert await page.page.evaluate("() => sessionStorage.getItem('voxdialog.auth')") is None
