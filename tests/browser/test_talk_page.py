"""The talk page in a real Chromium: speak through a fake microphone, hear and read the reply.

The microphone plays a WAV made from the server's own text-to-speech (the shared recordings
hold no task commands). Chromium plays it once from the moment the page opens the microphone.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import pytest
from openai import AsyncOpenAI
from playwright.async_api import BrowserContext, WebSocketRoute

from tests.browser.talk import (
    ASSISTANT_MESSAGES,
    HALF_SECOND,
    LEAD_S,
    USER_MESSAGES,
    OpenTalkPage,
    TalkPage,
    conversation,
    said,
    speech,
)
from tests.integration.conftest import LiveServer
from tests.integration.realtime_client import collect_until
from voxdialog.testing.browser import SPOKE_THEN_QUIET

pytestmark = [pytest.mark.models, pytest.mark.slow]

#: Silence between two commands of one script: the first is answered and played in it.
GAP_S = 12.0
#: Push-to-talk: how long before the words the test presses the key.
PRESS_BEFORE_SPEECH_S = 0.8
#: How long the microphone must stay quiet before the speaker is taken to have finished.
QUIET_MS = 700
PLAYED_AT_LEAST = """(samples) => Object.values(window.__voxdialogProbe.played)
  .reduce((sum, n) => sum + n, 0) >= samples"""


def normalized(text: str) -> str:
    """Text with runs of whitespace as single spaces (the stored copy joins words so)."""
    return " ".join(text.split())


def no_thinking_while_speaking(modes: list[str]) -> bool:
    """The status never fell back from "speaking" to "thinking" (between two sentences)."""
    return ("speaking", "thinking") not in set(itertools.pairwise(modes))


async def heard_part(page: TalkPage, selector: str) -> tuple[str, str]:
    """The heard (normal) and unheard (struck) text of the first bubble matching ``selector``."""
    bubble = page.page.locator(selector).first
    heard = await bubble.locator(".heard").text_content() or ""
    unheard = await bubble.locator(".unheard").text_content() or ""
    return heard, unheard


async def wait_until_heard_matches(page: TalkPage, item_id: str, stored: str) -> None:
    """Until the bubble of ``item_id`` shows exactly ``stored`` as its heard part."""
    await page.until(
        """([itemId, stored]) => {
          const heard = document.querySelector(`[data-item-id="${itemId}"] .heard`);
          return heard && heard.textContent.split(/\\s+/).filter(Boolean).join(" ") === stored;
        }""",
        [item_id, normalized(stored)],
    )


async def test_a_spoken_command_is_transcribed_answered_and_played(
    live_server: LiveServer, talk_page: OpenTalkPage
) -> None:
    command = await speech(live_server, "Add a task to call the dentist on Friday.")
    page = await talk_page([command])

    await page.wait_for(USER_MESSAGES)
    await page.wait_for(f"{ASSISTANT_MESSAGES}:not(.is-pending)")
    await page.shot("02-answered")
    # Playback ran to its end and the page went back to listening.
    await page.until(
        "() => window.__voxdialogProbe.modes.includes('speaking')"
        " && document.body.dataset.mode === 'listening'"
        " && document.body.dataset.playing === 'false'"
    )
    (said_text,) = await page.texts(USER_MESSAGES)
    (answer,) = await page.texts(ASSISTANT_MESSAGES)
    assert "dentist" in said_text.lower()
    assert "dentist" in answer.lower()
    seen = await page.probe()
    assert sum(seen["played"].values()) >= HALF_SECOND
    assert seen["flushes"] == 0  # nobody talked over it
    assert no_thinking_while_speaking(seen["modes"]), seen["modes"]
    # The hooks tools rely on: every bubble names its item and role; the stats add up.
    roles = await page.page.eval_on_selector_all(
        "#messages li.msg", "items => items.map(li => [li.dataset.role, li.dataset.itemId])"
    )
    assert [role for role, _ in roles] == ["user", "assistant"]
    assert all(item_id.startswith("item_") for _, item_id in roles)
    stats = (await page.exposed())["stats"]
    assert stats["audioChunksReceived"] > 0
    assert stats["audioChunksPlayed"] == stats["audioChunksReceived"]
    assert stats["reconnects"] == 0
    # The words showed while they were being said (the page asks for partial transcripts).
    assert stats["partialTranscripts"] >= 1


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
    await page.until("() => document.body.dataset.mode === 'listening'")
    await page.shot("03-answered")
    said_texts = await page.texts(USER_MESSAGES)
    answers = await page.texts(ASSISTANT_MESSAGES)
    assert "what can you do" in said_texts[0].lower()
    assert "milk" in said_texts[1].lower()
    assert "milk" in answers[1].lower()
    played = (await page.probe())["played"]
    for item_id, samples in cut_at.items():
        assert played[item_id] == samples, "the interrupted reply kept playing"
    assert set(played) - set(cut_at), "the answer to the interruption did not play"

    # What the page shows as heard is exactly what the server kept; the rest is struck.
    item_id = await interrupted.get_attribute("data-item-id")
    assert item_id is not None
    stored = await stored_assistant_text(page, live_server, item_id)
    await wait_until_heard_matches(page, item_id, stored)
    heard, unheard = await heard_part(page, f'[data-item-id="{item_id}"]')
    assert normalized(heard) == normalized(stored)
    assert unheard.strip(), "nothing of the interrupted reply is marked unheard"


async def stored_assistant_text(page: TalkPage, server: LiveServer, item_id: str) -> str:
    """The server's stored text of assistant item ``item_id`` in the page's conversation."""
    conversation_id = (await page.exposed())["conversationId"]
    stored = await conversation(server, conversation_id, server.api_key)
    (message,) = [m for m in stored["messages"] if m["item_id"] == item_id]
    assert message["status"] == "incomplete"
    text: str = message["text"]
    return text


async def test_push_to_talk_answers_on_release_and_a_tap_stops_the_reply(
    live_server: LiveServer, talk_page: OpenTalkPage
) -> None:
    question = await speech(live_server, "What can you do?")
    page = await talk_page([question], start=False)
    await page.page.click("text=Push to talk")
    await page.start()
    await page.until("() => !document.getElementById('ptt').hidden")
    await page.shot("02-push-to-talk")

    # Press Space a moment before the question is spoken, as a person does, and let go once
    # the microphone is quiet again. (The script's lead-in is silence while the page connects.)
    await page.until(
        "(ms) => performance.now() - window.__voxdialogProbe.levelSince >= ms",
        (LEAD_S - PRESS_BEFORE_SPEECH_S) * 1000,
    )
    await page.page.keyboard.down("Space")
    await page.until("() => document.body.dataset.mode === 'user'")
    await page.until(SPOKE_THEN_QUIET, QUIET_MS)
    await page.page.keyboard.up("Space")

    await page.wait_for(USER_MESSAGES)
    await page.until(PLAYED_AT_LEAST, HALF_SECOND)
    assert "what can you do" in (await page.texts(USER_MESSAGES))[0].lower()
    await page.shot("03-answering")

    # A tap while the reply plays stops it like talking over it, and is no turn itself.
    await page.page.keyboard.press("Space")
    await page.wait_for(f"{ASSISTANT_MESSAGES}.is-interrupted")
    seen = await page.probe()
    assert seen["flushes"] == 1
    item_id = await page.page.locator(f"{ASSISTANT_MESSAGES}.is-interrupted").first.get_attribute(
        "data-item-id"
    )
    assert item_id is not None
    stored = await stored_assistant_text(page, live_server, item_id)
    await wait_until_heard_matches(page, item_id, stored)
    await page.until(
        "() => document.body.dataset.mode === 'listening'"
        " && document.body.dataset.playing === 'false'"
    )
    await page.shot("04-stopped")
    played = (await page.probe())["played"]
    assert played[item_id] == seen["playedAtFlush"][item_id], "the reply went on playing"
    conversation_id = (await page.exposed())["conversationId"]
    messages = (await conversation(live_server, conversation_id, live_server.api_key))["messages"]
    assert len(said(messages, "user")) == 1, "the tap became a turn"


async def test_a_dropped_connection_comes_back_to_the_same_conversation(
    live_server: LiveServer, talk_page: OpenTalkPage
) -> None:
    first = await speech(live_server, "Add a task to water the plants.")
    second = await speech(live_server, "What are my tasks?")
    sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    async def through_a_proxy(context: BrowserContext) -> None:
        # Every Realtime socket goes through the test, which can cut it like a network drop.
        def forward(socket: WebSocketRoute) -> None:
            sockets.append((socket, socket.connect_to_server()))

        await context.route_web_socket(re.compile(r".*/v1/realtime.*"), forward)

    page = await talk_page([first, GAP_S, second], prepare=through_a_proxy)
    await page.wait_for(f"{ASSISTANT_MESSAGES}:not(.is-pending)")
    await page.until(
        "() => document.body.dataset.mode === 'listening'"
        " && document.body.dataset.playing === 'false'"
    )
    before: dict[str, Any] = await page.exposed()

    # Both ends see the connection go, as when a network drops: the server ends its side of
    # the session, the browser's socket closes without the page having asked.
    to_page, to_server = sockets[-1]
    await to_server.close()
    await to_page.close(code=1012, reason="the network went away")
    await page.until(
        "() => window.voxdialog.stats.reconnects === 1 && window.voxdialog.phase === 'live'"
    )
    await page.shot("02-reconnected")
    after = await page.exposed()
    assert after["conversationId"] == before["conversationId"]
    assert "reconnecting" in (await page.probe())["modes"]
    assert len(sockets) >= 2
    # The transcript stayed, and the next turn goes on in the same conversation.
    await page.wait_for(USER_MESSAGES, count=2)
    await page.wait_for(f"{ASSISTANT_MESSAGES}:not(.is-pending)", count=2)
    await page.until(  # the whole answer has arrived and played
        "() => document.body.dataset.mode === 'listening'"
        " && document.body.dataset.playing === 'false'"
    )
    await page.shot("03-answered-after-reconnect")
    said_texts = await page.texts(USER_MESSAGES)
    answers = await page.texts(ASSISTANT_MESSAGES)
    assert "water the plants" in said_texts[0].lower()
    assert "tasks" in said_texts[1].lower()
    assert "water the plants" in answers[1].lower()
    assert no_thinking_while_speaking((await page.probe())["modes"])
    stored = await conversation(live_server, before["conversationId"], live_server.api_key)
    user_lines = [line.lower() for line in said(stored["messages"], "user")]
    assert len(user_lines) == 2
    assert "water the plants" in user_lines[0]
    assert "tasks" in user_lines[1]


async def test_a_conversation_taken_over_elsewhere_is_not_taken_back(
    live_server: LiveServer, talk_page: OpenTalkPage
) -> None:
    command = await speech(live_server, "Add a task to call the plumber.")
    page = await talk_page([command])
    await page.wait_for(f"{ASSISTANT_MESSAGES}:not(.is-pending)")
    conversation_id = (await page.exposed())["conversationId"]
    api = AsyncOpenAI(api_key=live_server.api_key, base_url=f"{live_server.base_url}/v1")
    # The same user continues the conversation from another client (another tab, a phone).
    async with api.realtime.connect(
        model="local-voice", extra_query={"conversation": conversation_id}
    ) as elsewhere:
        created = await elsewhere.recv()
        await page.until("() => window.voxdialog.phase === 'disconnected'")
        await page.wait_for("#reconnect:not([hidden])")
        await page.shot("02-taken-over")
        notice = await page.page.locator("#notice").text_content() or ""
        # The page waits for the person: the other client keeps the conversation.
        await asyncio.sleep(3)
        await elsewhere.session.update(session={"type": "realtime", "instructions": "Hi."})
        updated = await collect_until(elsewhere, {"session.updated"}, timeout=30)
        assert (await page.exposed())["stats"]["reconnects"] == 0

        # The button brings the conversation back here; now the other client is the one told.
        await page.page.click("#reconnect")
        await page.until(
            "(id) => window.voxdialog.phase === 'live' && window.voxdialog.conversationId === id",
            conversation_id,
        )
        ended = await collect_until(elsewhere, {"error"}, timeout=30)
    await page.shot("03-brought-back")
    assert created.session.id == conversation_id
    assert updated[-1].type == "session.updated"
    assert "another window" in notice
    assert ended[-1].error.code == "session_taken_over"
    assert (await page.exposed())["stats"]["reconnects"] == 1
    assert await page.page.is_hidden("#reconnect")
    assert await page.page.is_hidden("#notice")
