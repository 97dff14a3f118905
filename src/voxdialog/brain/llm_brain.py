"""LLMBrain: a chat model that answers and acts through the task tools, with a fallback brain."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field

from voxdialog.brain.base import (
    Brain,
    BrainEvent,
    BrainSession,
    BrainTurn,
    ClientToolCall,
    CommandOutcome,
    LLMUnavailable,
    ReplyText,
)
from voxdialog.brain.context import approx_tokens, build_messages, system_prompt, task_context
from voxdialog.brain.tasks import TaskRecord, TaskStore
from voxdialog.brain.tool_specs import TOOL_GUIDANCE, enabled_specs
from voxdialog.brain.tools import TaskTools, ToolResult
from voxdialog.providers.base import (
    LLM,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    ProviderError,
    ToolCall,
    ToolSpec,
    close_provider,
)
from voxdialog.security.principal import Scope
from voxdialog.settings import AgentSettings

log = logging.getLogger(__name__)

MAX_ROUNDS = 4
"""Model calls per turn: tool rounds plus the one that speaks their outcome."""
MAX_CALLS_PER_ROUND = 8
"""Tool calls run per model answer; more are refused (a model in a loop)."""
APOLOGY = "Sorry, I can't reach my language model right now."
NO_ANSWER = "Sorry, I don't have an answer for that."


def _specs_tokens(specs: Sequence[ToolSpec]) -> int:
    # The tool specs travel with every request, so their size comes out of the context budget.
    return approx_tokens(json.dumps([dataclasses.asdict(s) for s in specs])) if specs else 0


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


class LLMBrain:
    """Answers with an LLM that may call the task tools; they run here, on the scoped store.

    Text deltas are streamed out as they arrive. When the model calls tools, they are run and
    their results fed back until it speaks (at most ``max_rounds`` model calls). If the model
    fails before anything was said or done, ``fallback`` (usually the built-in
    ``TaskAssistant``) answers the turn instead, so task commands keep working offline.

    Args:
        llm: The chat model (possibly a failover chain).
        store: Tasks and projects; every session sees only its scope.
        settings: The agent: persona, history length and context budget.
        fallback: The brain that answers when the model cannot.
        clock: The user's local time, for today's date (defaults to the system's).
        max_rounds: Model calls per turn.
        tools: The task tools the model may use (an agent's subset); ``None`` means all. With
            none, the model only talks: no tool guidance and no task list in its prompt.

    Example:
        >>> brain = LLMBrain(llm, store, settings=AgentSettings(), fallback=TaskAssistant(store))
        >>> # async for event in brain.open_session(scope).respond(BrainTurn("add milk")): ...
    """

    name = "llm"

    def __init__(
        self,
        llm: LLM,
        store: TaskStore,
        *,
        settings: AgentSettings,
        fallback: Brain | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        max_rounds: int = MAX_ROUNDS,
        tools: Collection[str] | None = None,
    ) -> None:
        """Keep the parts; sessions are cheap."""
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.llm = llm
        self.store = store
        self.settings = settings
        self.fallback = fallback
        self.clock = clock or _local_now
        self.max_rounds = max_rounds
        self.tools = None if tools is None else frozenset(tools)
        self.tools_tokens = _specs_tokens(enabled_specs(self.tools))

    def open_session(self, scope: Scope) -> LLMSession:
        """Start a conversation for ``scope``."""
        return LLMSession(self, scope)


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _CallCollector:
    """Joins streamed tool-call fragments into whole calls, by ``tool_call_index``."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, delta: ChatDelta) -> None:
        if (
            delta.tool_call_index is None
            and delta.tool_call_id is None
            and delta.tool_name is None
            and not delta.tool_arguments
        ):
            return
        # A provider that sends a single call may leave the index out.
        index = delta.tool_call_index if delta.tool_call_index is not None else 0
        call = self._calls.setdefault(index, _PartialCall())
        if delta.tool_call_id:
            call.id = delta.tool_call_id
        if delta.tool_name:
            call.name = delta.tool_name
        if delta.tool_arguments:
            call.arguments.append(delta.tool_arguments)

    def calls(self, round_no: int) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=c.id or f"call_{round_no}_{i}", name=c.name, arguments="".join(c.arguments))
            for i, c in sorted(self._calls.items())
        )


@dataclass(slots=True)
class _TurnRecord:
    """What one turn has said and done so far."""

    tail: str = ""  # the text spoken so far (its end decides on a joining space)
    rounds: list[list[tuple[ToolCall, ToolResult]]] = field(default_factory=list)
    error: str | None = None
    llm_error: str | None = None  # the model failed after the tools ran

    def say(self, text: str, *, opens_round: bool) -> ReplyText:
        # Each model answer starts without a space; pieces are concatenated downstream.
        if opens_round and self.tail and not self.tail[-1].isspace() and not text[0].isspace():
            text = " " + text
        self.tail = (self.tail + text)[-8:]
        return ReplyText(text)

    @property
    def spoken(self) -> bool:
        return bool(self.tail)

    def outcome(self, *, confidence: float, started: float) -> CommandOutcome:
        calls = [pair for batch in self.rounds for pair in batch]
        intent = "+".join(dict.fromkeys(call.name or "unknown" for call, _ in calls)) or "chat"
        if len(calls) == 1:
            entities: dict[str, object] = dict(calls[0][1].summary)
        elif calls:
            entities = {
                "calls": [{"tool": c.name, "ok": r.ok, **r.summary} for c, r in calls],
            }
        else:
            entities = {}
        if self.llm_error is not None:
            entities["llm_error"] = self.llm_error
        # The last round decides: a call the model fixed after an error is a success.
        last = self.rounds[-1] if self.rounds else []
        error = self.error or next((r.error for _, r in last if not r.ok), None)
        return CommandOutcome(
            intent=intent,
            confidence=confidence,
            success=error is None,
            entities=entities,
            error=error,
            processing_ms=(time.perf_counter() - started) * 1000.0,
        )


class LLMSession:
    """One conversation with the LLM brain; it keeps the fallback brain's session."""

    def __init__(self, brain: LLMBrain, scope: Scope) -> None:
        """Bind the session to ``scope``; the tools and the fallback only ever see it."""
        self.scope = scope
        self._brain = brain
        self._tools = TaskTools(brain.store, scope, clock=brain.clock, enabled=brain.tools)
        self._fallback: BrainSession | None = None

    async def respond(self, turn: BrainTurn) -> AsyncIterator[BrainEvent]:
        """Stream the answer to ``turn``, then exactly one ``CommandOutcome``."""
        started = time.perf_counter()
        brain = self._brain
        record = _TurnRecord()
        failure: Exception | None = None
        said_this_round = False
        try:
            messages = list(await self._messages(turn))
            server_tools = self._tools.specs()
            own = {spec.name for spec in server_tools}
            client_tools = tuple(t for t in turn.client_tools if t.name not in own)
            for round_no in range(brain.max_rounds):
                final = round_no == brain.max_rounds - 1
                request = ChatRequest(
                    messages=tuple(messages),
                    tools=server_tools + client_tools,
                    tool_choice="none" if final else "auto",
                )
                pieces: list[str] = []
                collector = _CallCollector()
                stream = brain.llm.chat(request)
                said_this_round = False
                try:
                    async for delta in stream:
                        if delta.text:
                            yield record.say(delta.text, opens_round=not pieces)
                            pieces.append(delta.text)
                            said_this_round = True
                        collector.add(delta)
                finally:
                    await close_provider(stream)
                if not collector:
                    break
                if final:
                    record.error = f"the model still called tools after {brain.max_rounds} rounds"
                    break
                calls = collector.calls(round_no)
                handed = [c for c in calls if c.name in {t.name for t in client_tools}]
                if handed:
                    # The client runs these; it asks for the next response when it has results.
                    for call in handed:
                        yield ClientToolCall(call.id, call.name, call.arguments)
                    yield CommandOutcome(
                        intent="+".join(dict.fromkeys(c.name for c in handed)),
                        confidence=1.0,
                        success=True,
                        entities={"client_tool_calls": [c.name for c in handed]},
                        processing_ms=(time.perf_counter() - started) * 1000,
                    )
                    return
                messages.append(ChatMessage("assistant", "".join(pieces), tool_calls=calls))
                record.rounds.append(await self._run(calls, messages))
        except Exception as e:  # ProviderError, or a provider bug: either costs this answer only
            failure = e
            log.warning(
                "llm turn failed",
                extra={"error": str(e), "error_type": type(e).__name__},
                exc_info=not isinstance(e, ProviderError),
            )
        if failure is not None:
            if brain.fallback is not None and not record.spoken and not record.rounds:
                events = self._fall_back(turn, failure, started)
                try:
                    async for event in events:
                        yield event
                finally:
                    await close_provider(events)
                return
            if said_this_round or not record.rounds:
                yield record.say(APOLOGY, opens_round=True)
                record.error = f"language model failed: {failure}"
                record.llm_error = str(failure)
                yield LLMUnavailable(str(failure))
                yield record.outcome(confidence=1.0 if record.rounds else 0.0, started=started)
                return
            # The tools ran and their work is stored; only the telling of it failed.
            record.llm_error = str(failure)
        if not said_this_round and (record.rounds or not record.spoken):
            # The model went quiet after the tools ran (or altogether): say the outcome here.
            results = record.rounds[-1] if record.rounds else []
            spoken = " ".join(r.spoken for _, r in results if r.spoken)
            yield record.say(spoken or NO_ANSWER, opens_round=True)
            if not results and record.error is None:
                record.error = "the model gave no answer"
        if record.llm_error is not None:
            yield LLMUnavailable(record.llm_error)
        yield record.outcome(confidence=1.0, started=started)

    async def _messages(self, turn: BrainTurn) -> tuple[ChatMessage, ...]:
        brain = self._brain
        tools = bool(self._tools.specs())
        open_tasks: list[TaskRecord] | None = None
        if tools:
            try:
                open_tasks = await brain.store.list_tasks(self.scope)
            except Exception:  # the model can still chat, and the tools report the store's state
                log.warning("task context unavailable", exc_info=True)
        system = system_prompt(
            brain.settings.system_prompt,
            instructions=turn.instructions,
            # An agent without task tools is not told about the to-do list at all.
            guidance=TOOL_GUIDANCE if tools else "",
            context=task_context(open_tasks, now=brain.clock()),
        )
        return build_messages(
            turn,
            system=system,
            max_history=brain.settings.history_messages,
            budget_tokens=brain.settings.context_tokens - brain.tools_tokens,
        )

    async def _run(
        self, calls: tuple[ToolCall, ...], messages: list[ChatMessage]
    ) -> list[tuple[ToolCall, ToolResult]]:
        """Run the calls in order; each result becomes a ``tool`` message for the model."""
        done: list[tuple[ToolCall, ToolResult]] = []
        for n, call in enumerate(calls):
            if n < MAX_CALLS_PER_ROUND:
                result = await self._tools.call(call.name, call.arguments)
            else:
                error = f"too many tool calls at once; at most {MAX_CALLS_PER_ROUND} are run"
                result = ToolResult(False, json.dumps({"ok": False, "error": error}), error=error)
            done.append((call, result))
            messages.append(ChatMessage("tool", result.content, tool_call_id=call.id))
        return done

    async def _fall_back(
        self, turn: BrainTurn, failure: Exception, started: float
    ) -> AsyncIterator[BrainEvent]:
        fallback = self._brain.fallback
        assert fallback is not None
        if self._fallback is None:
            self._fallback = fallback.open_session(self.scope)
        events = self._fallback.respond(turn)
        try:
            async for event in events:
                if isinstance(event, CommandOutcome):
                    yield LLMUnavailable(str(failure))
                    event = dataclasses.replace(
                        event,
                        entities={
                            **event.entities,
                            "brain": fallback.name,
                            "llm_error": str(failure),
                        },
                        processing_ms=(time.perf_counter() - started) * 1000.0,
                    )
                yield event
        finally:
            await close_provider(events)
