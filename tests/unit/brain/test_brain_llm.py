import asyncio
import datetime as dt
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import pytest

from voxdialog.brain.assistant import TaskAssistant
from voxdialog.brain.base import (
    Brain,
    BrainEvent,
    BrainSession,
    BrainTurn,
    CommandOutcome,
    HistoryMessage,
    LLMUnavailable,
    ReplyText,
)
from voxdialog.brain.llm_brain import APOLOGY, MAX_ROUNDS, NO_ANSWER, LLMBrain
from voxdialog.brain.tasks import NewTask
from voxdialog.providers.base import ChatDelta, ChatRequest, ProviderError, ProviderInfo
from voxdialog.security.principal import Scope
from voxdialog.settings import AgentSettings
from voxdialog.testing.fake_llm import FakeLLM
from voxdialog.testing.tasks import MemoryTaskStore

NOW = dt.datetime(2025, 6, 11, 9, 0)  # a Wednesday morning
ANN = Scope("acme", "ann")
BOB = Scope("acme", "bob")
PERSONA = "You are Vox, a test persona."


def tool_call(
    name: str, arguments: object, *, call_id: str = "call_1", index: int = 0, pieces: int = 3
) -> list[ChatDelta]:
    """A streamed tool call as OpenAI sends it: id and name once, then argument fragments."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    size = max(1, -(-len(raw) // pieces))
    fragments = [raw[i : i + size] for i in range(0, len(raw), size)]
    return [
        ChatDelta(tool_call_index=index, tool_call_id=call_id, tool_name=name),
        *(ChatDelta(tool_call_index=index, tool_arguments=f) for f in fragments),
    ]


class FailingOnCall:
    """Delegates to a FakeLLM but raises ProviderError on the given (1-based) calls."""

    def __init__(self, inner: FakeLLM, *, fail_on: set[int]) -> None:
        self.info = ProviderInfo(name="flaky", model="scripted", streaming=True)
        self.inner = inner
        self.fail_on = fail_on
        self.calls = 0

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        self.calls += 1
        if self.calls in self.fail_on:
            raise ProviderError("upstream 503", retryable=True, status=503)
        async for delta in self.inner.chat(request):
            yield delta


@pytest.fixture
def store() -> MemoryTaskStore:
    return MemoryTaskStore()


def brain_for(
    llm: object,
    store: MemoryTaskStore,
    *,
    fallback: Brain | None = None,
    settings: AgentSettings | None = None,
) -> LLMBrain:
    brain = LLMBrain(
        llm,  # type: ignore[arg-type]
        store,
        settings=settings or AgentSettings(system_prompt=PERSONA),
        fallback=fallback,
        clock=lambda: NOW,
    )
    assert brain.name == "llm"
    return brain


#: The ``LLMUnavailable`` events of the last ``run`` (the model failed during the turn).
FAILURES: list[LLMUnavailable] = []


async def run(session: BrainSession, turn: BrainTurn | str) -> tuple[list[str], CommandOutcome]:
    pieces: list[str] = []
    outcomes: list[CommandOutcome] = []
    FAILURES.clear()
    async for event in session.respond(BrainTurn(turn) if isinstance(turn, str) else turn):
        if isinstance(event, ReplyText):
            assert not outcomes, "text after the outcome"
            pieces.append(event.text)
        elif isinstance(event, LLMUnavailable):
            assert not outcomes, "the failure comes before the outcome"
            FAILURES.append(event)
        else:
            outcomes.append(event)
    assert len(outcomes) == 1
    assert len(FAILURES) <= 1
    return pieces, outcomes[0]


async def titles(store: MemoryTaskStore, scope: Scope = ANN, *, done: bool = False) -> list[str]:
    return [t.title for t in await store.list_tasks(scope, include_done=True) if t.done == done]


def calls(outcome: CommandOutcome) -> list[dict[str, Any]]:
    found: Any = outcome.entities["calls"]
    return list(found)


def tool_messages(request: ChatRequest) -> list[dict[str, object]]:
    return [json.loads(m.content) for m in request.messages if m.role == "tool"]


async def test_plain_text_streams_through_as_deltas(store: MemoryTaskStore) -> None:
    llm = FakeLLM(["Paris is the capital of France."])
    pieces, outcome = await run(brain_for(llm, store).open_session(ANN), "what is the capital")
    assert pieces == ["Paris", " is", " the", " capital", " of", " France."]
    assert outcome.intent == "chat"
    assert outcome.success
    assert outcome.error is None
    assert outcome.processing_ms >= 0.0
    [request] = llm.requests
    assert {t.name for t in request.tools} >= {"create_task", "complete_task", "list_tasks"}
    assert request.tool_choice == "auto"
    assert request.messages[0].role == "system"
    assert request.messages[-1].role == "user"
    assert request.messages[-1].content == "what is the capital"


async def test_deltas_come_out_before_the_model_has_finished(store: MemoryTaskStore) -> None:
    llm = FakeLLM(["One two three four."])
    session = brain_for(llm, store).open_session(ANN)
    events = session.respond(BrainTurn("count"))
    first = await anext(events)
    assert first == ReplyText("One")
    assert len(llm.requests) == 1
    assert llm.cancelled == 0  # the model is still mid-answer
    rest = [e async for e in events]
    assert isinstance(rest[-1], CommandOutcome)


async def test_the_system_prompt_holds_persona_instructions_tools_guidance_and_tasks(
    store: MemoryTaskStore,
) -> None:
    await store.add_task(ANN, NewTask(title="Water the plants"))
    await store.add_task(BOB, NewTask(title="Bob's secret task"))
    llm = FakeLLM(["Hi."])
    turn = BrainTurn("hello", instructions="Speak like a pirate.")
    await run(brain_for(llm, store).open_session(ANN), turn)
    system = llm.requests[0].messages[0].content
    assert system.startswith(PERSONA)
    assert "Speak like a pirate." in system
    assert "tools" in system
    assert "2025-06-11" in system
    assert "“Water the plants”" in system
    assert "Bob" not in system


async def test_history_is_sent_and_trimmed_to_the_budget(store: MemoryTaskStore) -> None:
    history = tuple(
        HistoryMessage("user" if i % 2 == 0 else "assistant", f"m{i:02d} " + "x" * 396)
        for i in range(40)
    )
    llm = FakeLLM(["Sure."])
    settings = AgentSettings(system_prompt=PERSONA, history_messages=30, context_tokens=2000)
    brain = brain_for(llm, store, settings=settings)
    await run(brain.open_session(ANN), BrainTurn("and now?", history=history))
    messages = llm.requests[0].messages
    assert messages[0].role == "system"
    assert messages[-1].content == "and now?"
    sent = [m.content[:3] for m in messages[1:-1]]
    assert sent  # some history fits
    assert len(sent) < 30  # but not all of it: each message is 100 tokens
    assert sent == [f"m{i:02d}" for i in range(40 - len(sent), 40)]  # the newest, in order


async def test_add_buy_milk_runs_the_tool_and_the_model_speaks_the_outcome(
    store: MemoryTaskStore,
) -> None:
    llm = FakeLLM(
        [tool_call("create_task", {"title": "Buy milk"}, call_id="call_abc"), "Added buy milk."]
    )
    pieces, outcome = await run(brain_for(llm, store).open_session(ANN), "add buy milk to my list")
    assert await titles(store) == ["Buy milk"]
    assert "".join(pieces) == "Added buy milk."
    assert len(llm.requests) == 2
    second = llm.requests[1].messages
    assistant, tool = second[-2], second[-1]
    assert assistant.role == "assistant"
    [called] = assistant.tool_calls
    assert (called.id, called.name) == ("call_abc", "create_task")
    assert json.loads(called.arguments) == {"title": "Buy milk"}
    assert tool.role == "tool"
    assert tool.tool_call_id == "call_abc"
    assert json.loads(tool.content)["ok"] is True
    assert json.loads(tool.content)["task"]["title"] == "Buy milk"
    assert second[:-2] == llm.requests[0].messages  # the context is kept, then extended
    assert outcome.intent == "create_task"
    assert outcome.success
    assert outcome.confidence == 1.0
    assert outcome.entities["title"] == "Buy milk"
    assert outcome.entities["task_id"] == (await store.list_tasks(ANN))[0].id


async def test_text_before_a_tool_call_and_after_it_is_joined_with_a_space(
    store: MemoryTaskStore,
) -> None:
    llm = FakeLLM([[ChatDelta(text="Sure."), *tool_call("list_tasks", {})], "You have none."])
    pieces, outcome = await run(brain_for(llm, store).open_session(ANN), "what do I have")
    assert "".join(pieces) == "Sure. You have none."
    assert llm.requests[1].messages[-2].content == "Sure."
    assert outcome.intent == "list_tasks"


async def test_complete_and_delete_by_a_fuzzy_title(store: MemoryTaskStore) -> None:
    for title in ("Water the plants", "Buy milk", "Clean the garage"):
        await store.add_task(ANN, NewTask(title=title))
    llm = FakeLLM(
        [
            tool_call("complete_task", {"task": "by milk"}),
            "Marked it done.",
            tool_call("delete_task", {"task": "water plants"}),
            "Deleted.",
        ]
    )
    session = brain_for(llm, store).open_session(ANN)
    _, outcome = await run(session, "I bought the milk")
    assert outcome.intent == "complete_task"
    assert outcome.success
    assert outcome.entities["title"] == "Buy milk"
    assert outcome.entities["task"] == "by milk"
    _, outcome = await run(session, "forget the plants")
    assert outcome.intent == "delete_task"
    assert outcome.success
    assert await titles(store) == ["Clean the garage"]
    assert await titles(store, done=True) == ["Buy milk"]


async def test_bad_tool_arguments_are_fed_back_to_the_model_as_an_error(
    store: MemoryTaskStore,
) -> None:
    llm = FakeLLM([tool_call("create_task", '{"title": "Buy'), "Sorry, what should I add?"])
    pieces, outcome = await run(brain_for(llm, store).open_session(ANN), "add something")
    [result] = tool_messages(llm.requests[1])
    assert result["ok"] is False
    assert "not valid JSON" in str(result["error"])
    assert "".join(pieces) == "Sorry, what should I add?"
    assert await titles(store) == []
    assert outcome.intent == "create_task"
    assert not outcome.success
    assert outcome.error is not None
    assert "JSON" in outcome.error


async def test_a_call_the_model_fixes_after_an_error_counts_as_a_success(
    store: MemoryTaskStore,
) -> None:
    llm = FakeLLM(
        [
            tool_call("create_task", {"due_date": "2025-06-12"}),
            tool_call("create_task", {"title": "Call mum", "due_date": "2025-06-12"}, pieces=2),
            "Added for tomorrow.",
        ]
    )
    _, outcome = await run(brain_for(llm, store).open_session(ANN), "remind me to call mum")
    assert "'title' is required" in str(tool_messages(llm.requests[1])[0]["error"])
    assert await titles(store) == ["Call mum"]
    assert outcome.intent == "create_task"
    assert outcome.success
    assert [c["ok"] for c in calls(outcome)] == [False, True]


async def test_an_unknown_tool_is_reported_to_the_model(store: MemoryTaskStore) -> None:
    llm = FakeLLM([tool_call("order_pizza", {"size": "large"}), "I can't order pizza."])
    pieces, outcome = await run(brain_for(llm, store).open_session(ANN), "order a pizza")
    [result] = tool_messages(llm.requests[1])
    assert "unknown tool 'order_pizza'" in str(result["error"])
    assert "".join(pieces) == "I can't order pizza."
    assert outcome.intent == "order_pizza"
    assert not outcome.success


async def test_several_calls_in_one_answer_all_run_in_order(store: MemoryTaskStore) -> None:
    first = tool_call("create_task", {"title": "Buy eggs"}, call_id="a", index=0)
    second = tool_call("create_task", {"title": "Buy flour"}, call_id="b", index=1)
    interleaved = [
        first[0],
        second[0],
        *[d for pair in zip(first[1:], second[1:], strict=True) for d in pair],
    ]
    llm = FakeLLM([interleaved, "Added both."])
    _, outcome = await run(brain_for(llm, store).open_session(ANN), "add eggs and flour")
    assert await titles(store) == ["Buy eggs", "Buy flour"]
    assert [m.tool_call_id for m in llm.requests[1].messages if m.role == "tool"] == ["a", "b"]
    assert outcome.intent == "create_task"
    assert [c["title"] for c in calls(outcome)] == ["Buy eggs", "Buy flour"]


async def test_a_model_that_keeps_calling_tools_is_stopped_after_the_last_round(
    store: MemoryTaskStore,
) -> None:
    await store.add_task(ANN, NewTask(title="Buy milk"))
    llm = FakeLLM([tool_call("list_tasks", {})])  # the last script repeats forever
    pieces, outcome = await run(brain_for(llm, store).open_session(ANN), "what's on my list")
    assert len(llm.requests) == MAX_ROUNDS
    assert [r.tool_choice for r in llm.requests] == ["auto"] * (MAX_ROUNDS - 1) + ["none"]
    assert len(tool_messages(llm.requests[-1])) == MAX_ROUNDS - 1
    assert "one task" in "".join(pieces)  # the last results, said without the model
    assert not outcome.success
    assert outcome.error is not None
    assert "rounds" in outcome.error


async def test_an_empty_answer_gets_a_short_apology(store: MemoryTaskStore) -> None:
    pieces, outcome = await run(brain_for(FakeLLM([""]), store).open_session(ANN), "hmm")
    assert "".join(pieces) == NO_ANSWER
    assert outcome.intent == "chat"
    assert not outcome.success


async def test_when_the_model_is_down_the_fallback_assistant_adds_the_task(
    store: MemoryTaskStore,
) -> None:
    llm = FakeLLM(["Hello again."], fail_first=1)
    fallback = TaskAssistant(store, clock=lambda: NOW)
    session = brain_for(llm, store, fallback=fallback).open_session(ANN)
    pieces, outcome = await run(session, "add buy milk to my list")
    assert [t.lower() for t in await titles(store)] == ["buy milk"]
    assert "buy milk" in "".join(pieces).lower()
    assert outcome.intent == "add_task"
    assert outcome.success
    assert outcome.entities["brain"] == "assistant"
    assert "fake LLM failure" in str(outcome.entities["llm_error"])
    assert [f.error for f in FAILURES] == [outcome.entities["llm_error"]]
    pieces, outcome = await run(session, "hello")  # the model is back
    assert not FAILURES
    assert "".join(pieces) == "Hello again."
    assert outcome.intent == "chat"


async def test_without_a_fallback_a_failure_is_an_apology(store: MemoryTaskStore) -> None:
    llm = FakeLLM(["unused"], fail_first=1)
    pieces, outcome = await run(brain_for(llm, store).open_session(ANN), "add buy milk")
    assert "".join(pieces) == APOLOGY
    assert not outcome.success
    assert outcome.confidence == 0.0
    assert outcome.error is not None
    assert "fake LLM failure" in outcome.error
    assert await titles(store) == []


async def test_a_failure_after_text_apologises_instead_of_falling_back(
    store: MemoryTaskStore,
) -> None:
    llm = FakeLLM(["Let me think about that for a moment."], fail_after=3)
    fallback = TaskAssistant(store, clock=lambda: NOW)
    session = brain_for(llm, store, fallback=fallback).open_session(ANN)
    pieces, outcome = await run(session, "add buy milk")
    assert pieces[:3] == ["Let", " me", " think"]
    assert pieces[-1] == " " + APOLOGY
    assert not outcome.success
    assert "stream dropped" in str(outcome.error)
    assert await titles(store) == []  # the fallback did not act on it


async def test_a_failure_after_the_tools_ran_says_what_was_done_and_never_repeats_it(
    store: MemoryTaskStore,
) -> None:
    inner = FakeLLM([tool_call("create_task", {"title": "Buy milk"}), "unused"])
    llm = FailingOnCall(inner, fail_on={2})
    fallback = TaskAssistant(store, clock=lambda: NOW)
    session = brain_for(llm, store, fallback=fallback).open_session(ANN)
    pieces, outcome = await run(session, "add buy milk to my list")
    assert await titles(store) == ["Buy milk"]  # added once, by the tool only
    assert "buy milk" in "".join(pieces).lower()
    assert outcome.intent == "create_task"
    assert outcome.success  # the work is stored and was said
    assert "upstream 503" in str(outcome.entities["llm_error"])
    assert [f.error for f in FAILURES] == [outcome.entities["llm_error"]]


async def test_abandoning_the_answer_closes_the_model_stream(store: MemoryTaskStore) -> None:
    llm = FakeLLM(["One two three four five."])
    events = cast(
        AsyncGenerator[BrainEvent, None],
        brain_for(llm, store).open_session(ANN).respond(BrainTurn("count")),
    )
    assert await anext(events) == ReplyText("One")
    await events.aclose()
    assert llm.cancelled == 1


async def test_cancelling_the_turn_cancels_the_model_and_is_not_swallowed(
    store: MemoryTaskStore,
) -> None:
    llm = FakeLLM(hang=True)
    fallback = TaskAssistant(store, clock=lambda: NOW)
    session = brain_for(llm, store, fallback=fallback).open_session(ANN)
    task = asyncio.create_task(run(session, "add buy milk"))
    while not llm.requests:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert llm.cancelled == 1
    assert await titles(store) == []  # cancellation is not a failure to fall back from


async def test_two_scopes_tools_never_touch_each_others_tasks(store: MemoryTaskStore) -> None:
    await store.add_task(ANN, NewTask(title="Buy milk"))
    llm = FakeLLM([tool_call("complete_task", {"task": "buy milk"}), "I couldn't find it."])
    brain = brain_for(llm, store)
    _, outcome = await run(brain.open_session(BOB), "I bought the milk")
    assert not outcome.success
    assert "no task matches" in str(tool_messages(llm.requests[1])[0]["error"])
    assert await titles(store, done=True) == []
    assert await titles(store) == ["Buy milk"]
    assert "Buy milk" not in llm.requests[0].messages[0].content  # Bob's context is his own


def test_max_rounds_must_allow_one_model_call(store: MemoryTaskStore) -> None:
    with pytest.raises(ValueError, match="max_rounds"):
        LLMBrain(FakeLLM(), store, settings=AgentSettings(), max_rounds=0)
