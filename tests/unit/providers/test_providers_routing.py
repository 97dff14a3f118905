"""Smart routing: query classes, first matching route, unhealthy chains skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import pytest

from voxdialog.providers.base import LLM, ChatDelta, ChatMessage, ChatRequest
from voxdialog.providers.chain import CallPolicy, ChainExhausted, FallbackLLM
from voxdialog.providers.routing import RoutedLLM, classify
from voxdialog.settings import RouteRule
from voxdialog.testing.clock import FakeClock
from voxdialog.testing.fake_llm import FakeLLM

When = Literal["short", "long", "question", "always"]


def _rule(when: When, *, max_words: int = 5) -> RouteRule:
    return RouteRule(when=when, llm=["whatever"], max_words=max_words)


def _request(*messages: tuple[str, str]) -> ChatRequest:
    return ChatRequest(messages=tuple(ChatMessage(role=r, content=c) for r, c in messages))


async def _text(stream: AsyncIterator[ChatDelta]) -> str:
    return "".join([delta.text async for delta in stream])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Turn on the lights.", {"short"}),
        ("one two three four five", {"short"}),
        ("one two three four five six", {"long"}),
        ("", {"short"}),
        ("It is raining?", {"short", "question"}),
        ("what time is it", {"short", "question"}),
        ("What's the weather like in Lisbon tomorrow afternoon", {"long", "question"}),
        ("How’d you know", {"short", "question"}),
        ("Can you add milk to my list.", {"long", "question"}),
        ("Isn't it late", {"short", "question"}),
        ('"Why" she asked.', {"short", "question"}),
        ("Don't stop the music.", {"short"}),
        ("Whatever you say.", {"short"}),
        ("Remind me to call Anna at six tonight please.", {"long"}),
    ],
)
def test_classify_tells_short_from_long_and_spots_questions(text: str, expected: set[str]) -> None:
    assert classify(text, max_words=5) == expected


async def test_the_first_route_whose_class_matches_the_turn_answers() -> None:
    default = FakeLLM(["default answer"], name="default")
    quick = FakeLLM(["quick answer"], name="quick")
    thinker = FakeLLM(["thoughtful answer"], name="thinker")
    router = RoutedLLM(default, [(_rule("short"), quick), (_rule("question"), thinker)])

    assert await _text(router.chat(_request(("user", "Lights off.")))) == "quick answer"
    assert await _text(router.chat(_request(("user", "Is it true?")))) == "quick answer"
    long_question = "Why is the sky blue on a clear day?"
    assert await _text(router.chat(_request(("user", long_question)))) == "thoughtful answer"
    long_statement = "Please tell me a long story about a dragon and a knight."
    assert await _text(router.chat(_request(("user", long_statement)))) == "default answer"

    assert len(quick.requests) == 2
    assert len(thinker.requests) == len(default.requests) == 1


async def test_routing_reads_the_last_user_message_only() -> None:
    default = FakeLLM(["default answer"], name="default")
    quick = FakeLLM(["quick answer"], name="quick")
    router = RoutedLLM(default, [(_rule("short"), quick)])
    request = _request(
        ("system", "You are a helpful assistant who answers in full sentences always."),
        ("user", "Tell me everything you know about the history of Rome please."),
        ("assistant", "Sure."),
        ("user", "Shorter, please."),
        ("assistant", "Rome was founded in 753 BC."),
    )

    assert router.pick(request) is quick
    assert await _text(router.chat(request)) == "quick answer"


async def test_an_always_route_takes_every_turn() -> None:
    default = FakeLLM(["default answer"], name="default")
    every = FakeLLM(["always answer"], name="every")
    router = RoutedLLM(default, [(_rule("always"), every)])

    long_text = "A fairly long sentence that is certainly more than five words."
    assert await _text(router.chat(_request(("user", long_text)))) == "always answer"
    assert default.requests == []


async def test_a_route_whose_chain_is_down_is_skipped_until_it_recovers() -> None:
    clock = FakeClock()
    default = FakeLLM(["default answer"], name="default")
    fast = FakeLLM(["fast answer"], name="fast", fail_first=1)
    chain = FallbackLLM(
        [fast], policy=CallPolicy(breaker_failures=1, breaker_reset_s=10.0), clock=clock
    )
    router = RoutedLLM(default, [(_rule("short"), chain)])
    request = _request(("user", "Hi there."))
    with pytest.raises(ChainExhausted):
        await _text(router.chat(request))

    assert router.pick(request) is default
    assert await _text(router.chat(request)) == "default answer"
    assert len(fast.requests) == 1

    clock.advance(10.0)
    assert await chain.probe_once() == ["fast"]
    assert router.pick(request) is chain
    assert await _text(router.chat(request)) == "fast answer"


def test_the_router_is_itself_an_llm() -> None:
    default = FakeLLM(name="default")
    router: LLM = RoutedLLM(default, [], name="smart")

    assert router.info.name == "smart"
    assert router.info.streaming


async def test_stt_goes_to_the_provider_preferred_for_the_turns_language() -> None:
    from voxdialog.audio.formats import AudioChunk
    from voxdialog.providers.assembly import ProviderAssembly
    from voxdialog.providers.registry import ProviderRegistry
    from voxdialog.settings import ChainSettings, ProviderSettings
    from voxdialog.testing.fakes import FakeSTT

    english, spanish = FakeSTT(["hello"] * 3), FakeSTT(["hola"] * 3)
    registry = ProviderRegistry()
    registry.register_stt("en-local", lambda: english)
    registry.register_stt("es-local", lambda: spanish)
    assembly = ProviderAssembly(registry, {}, ChainSettings())
    # Local providers declare no languages: plain chain order.
    plain = assembly.stt(["en-local", "es-local"])
    clip = AudioChunk(b"\x00\x00" * 1600, 16_000)
    assert (await plain.transcribe(clip, language="es")).text == "hello"
    declared = ProviderAssembly(
        registry,
        {
            "es-remote": ProviderSettings(
                kind="speaches", stage="stt", base_url="http://127.0.0.1:9", languages=["es"]
            )
        },
        ChainSettings(),
    )
    routed = declared.stt(["en-local", "es-remote"])
    picked = routed.pick("es-MX")  # type: ignore[attr-defined]
    assert next(h.name for h in picked.health()) == "es-remote"
    assert routed.pick("en") is routed.pick(None)  # type: ignore[attr-defined]
