"""AgentResolver: from an agent id or name to the stages a voice session runs with.

Provider chains are built once per list of names and shared by every agent and session that
names the same list; local models come from the registry, which loads each of them once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from voxdialog.agents.stages import DEFAULT_AGENT, AgentStages, UnknownAgentError
from voxdialog.agents.voicing import voiced
from voxdialog.brain.assistant import TaskAssistant
from voxdialog.brain.base import Brain
from voxdialog.brain.llm_brain import LLMBrain
from voxdialog.brain.tasks import TaskStore
from voxdialog.brain.tool_specs import TOOL_NAMES
from voxdialog.db.engine import Database
from voxdialog.db.repos.agents import AgentRecord, get_agent
from voxdialog.db.repos.users import get_user
from voxdialog.providers.assembly import ProviderAssembly, ProviderConfigError
from voxdialog.providers.base import LLM, STT, TTS, ProviderError, warm_up
from voxdialog.providers.registry import ProviderRegistry
from voxdialog.security.principal import Scope
from voxdialog.settings import Settings, TurnSettings

log = logging.getLogger(__name__)

_T = TypeVar("_T")
STAGES = ("llm", "stt", "tts")


def provider_names(settings: Settings, registry: ProviderRegistry, stage: str) -> frozenset[str]:
    """The provider names an agent may list for ``stage`` (``llm``, ``stt`` or ``tts``).

    These are the remote providers declared for that stage in the settings, and the local
    models of the registry (``whisper``, ``piper`` and their OpenAI aliases) whose names no
    declared provider takes over, exactly as `ProviderAssembly` resolves names.
    """
    declared = {name for name, config in settings.providers.items() if config.stage == stage}
    local = {
        entry.id
        for entry in registry.list_models()
        if entry.stage == stage and entry.id not in settings.providers
    }
    return frozenset(declared | local)


class AgentResolver:
    """Resolves the agent of a session and builds (or reuses) its stages.

    Args:
        db: Where agents and user settings are stored.
        settings: The server's settings (default persona, turn taking).
        assembly: Builds provider chains from names (the runtime's, shared).
        registry: The local models (which names are local ones).
        tasks: The task store the LLM brains' tools act on.
        default: The server's own agent, used when a session names none.
        default_llm: The server's LLM chain (None when it has none): agents with a persona but
            no chain of their own speak through it.
    """

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        assembly: ProviderAssembly,
        registry: ProviderRegistry,
        tasks: TaskStore,
        default: AgentStages,
        default_llm: LLM | None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._assembly = assembly
        self._registry = registry
        self._tasks = tasks
        self.default = default
        self._default_llm = default_llm
        self._fallback = TaskAssistant(tasks)
        # Chains by stage and names; the server's own chains are there from the start.
        self._chains: dict[tuple[str, tuple[str, ...]], Any] = {
            ("stt", tuple(settings.agent.stt)): default.stt,
            ("tts", tuple(settings.agent.tts)): default.tts,
        }
        self._building = asyncio.Lock()
        self._probes: set[asyncio.Task[None]] = set()

    async def resolve(self, scope: Scope, ref: str | None) -> AgentStages:
        """The stages of agent ``ref`` (an id or a name in the caller's tenant).

        No ``ref`` means the agent the user chose in their settings (``default_agent``), or
        the server's own agent; ``"default"`` always means the server's own agent.

        Raises:
            UnknownAgentError: ``ref`` is not an agent of the caller's tenant.
        """
        if ref == DEFAULT_AGENT:
            return self.default
        if not ref:
            agent = await self._preferred(scope)
            return self.default if agent is None else await self._stages(agent)
        agent = await get_agent(self._db, scope.tenant_id, ref)
        if agent is None:
            raise UnknownAgentError(ref)
        return await self._stages(agent)

    async def aclose(self) -> None:
        """Stop the health probes of the chains built here (the assembly closes providers)."""
        for task in self._probes:
            task.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)
        self._probes.clear()

    async def _preferred(self, scope: Scope) -> AgentRecord | None:
        """The user's ``default_agent``, if set and still there (a stale one is ignored)."""
        user = await get_user(self._db, scope)
        preferred = user.settings.get("default_agent") if user is not None else None
        if not isinstance(preferred, str) or preferred in ("", DEFAULT_AGENT):
            return None
        return await get_agent(self._db, scope.tenant_id, preferred)

    async def _stages(self, agent: AgentRecord) -> AgentStages:
        stt = self.default.stt
        if agent.stt:
            stt = await self._stage(agent, "stt", self._stt, stt)
        tts = self.default.tts
        if agent.tts:
            tts = await self._stage(agent, "tts", self._tts, tts)
        voice = agent.voice.get("voice")
        return AgentStages(
            agent_id=agent.id,
            name=agent.name,
            stt=stt,
            tts=voiced(tts, agent.voice),
            brain=await self._brain(agent),
            turns=self._turns(agent),
            voice=voice if isinstance(voice, str) else None,
            greeting=agent.greeting,
        )

    async def _stage(
        self,
        agent: AgentRecord,
        stage: str,
        build: Callable[[Sequence[str]], Awaitable[_T]],
        default: _T,
    ) -> _T:
        """The agent's chain for ``stage``; the server's when it cannot be built.

        Names are checked when an agent is saved, so this only happens when the server's
        providers changed since, or a model failed to load: the session still works.
        """
        names: tuple[str, ...] = getattr(agent, stage)
        try:
            known = provider_names(self._settings, self._registry, stage)
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ProviderConfigError(f"unknown {stage} provider '{unknown[0]}'")
            built: _T = await build(names)
        except (ProviderConfigError, ProviderError) as exc:
            log.warning(
                "agent provider chain unavailable; using the server's",
                extra={"agent_id": agent.id, "stage": stage, "error": str(exc)},
            )
            return default
        return built

    async def _stt(self, names: Sequence[str]) -> STT:
        stt: STT = await self._cached("stt", names, lambda: self._assembly.stt(names), True)
        return stt

    async def _tts(self, names: Sequence[str]) -> TTS:
        tts: TTS = await self._cached("tts", names, lambda: self._assembly.tts(names), True)
        return tts

    async def _llm(self, names: Sequence[str]) -> LLM:
        def build() -> LLM:
            llm = self._assembly.llm(names)
            if llm is None:  # only for no names, which callers never pass
                raise ProviderConfigError("an LLM chain needs at least one provider")
            return llm

        chain: LLM = await self._cached("llm", names, build, False)
        return chain

    async def _cached(
        self, stage: str, names: Sequence[str], build: Callable[[], _T], blocking: bool
    ) -> _T:
        """The chain for ``names``, built on first use (one build at a time: no double loads)."""
        key = (stage, tuple(names))
        if key not in self._chains:
            async with self._building:
                if key not in self._chains:
                    self._chains[key] = await self._build(build, blocking)
        chain: _T = self._chains[key]
        return chain

    async def _build(self, build: Callable[[], _T], blocking: bool) -> _T:
        known = len(self._assembly.chains)
        # Local models load for seconds: off the event loop.
        built = await asyncio.to_thread(build) if blocking else build()
        await warm_up(built)
        for chain in self._assembly.chains[known:]:
            self._probes.add(asyncio.create_task(chain.probe_loop()))
        return built

    async def _brain(self, agent: AgentRecord) -> Brain:
        llm = self._default_llm
        if agent.llm:
            llm = await self._stage(agent, "llm", self._llm, llm)
        tools = None if set(TOOL_NAMES) <= set(agent.tools) else frozenset(agent.tools)
        # The built-in assistant answers when there is no model, or when the model fails; it
        # takes only the actions of the agent's enabled tools.
        assistant = self._fallback if tools is None else TaskAssistant(self._tasks, tools=tools)
        if llm is None:
            return assistant if tools is not None else self.default.brain
        if llm is self._default_llm and agent.system_prompt is None and tools is None:
            # Nothing of the agent's own to say or do differently from the server's brain.
            return self.default.brain
        server = self._settings.agent
        persona = server.model_copy(
            update={
                "llm": list(agent.llm) or server.llm,
                "system_prompt": agent.system_prompt or server.system_prompt,
            }
        )
        return LLMBrain(llm, self._tasks, settings=persona, fallback=assistant, tools=tools)

    def _turns(self, agent: AgentRecord) -> TurnSettings:
        """The server's turn taking with the agent's overrides (stale values are ignored)."""
        base = self._settings.turns
        overrides = _known(agent.turn_detection, TurnSettings)
        if not overrides:
            return base
        try:
            return TurnSettings.model_validate({**base.model_dump(), **overrides})
        except ValidationError:
            log.warning(
                "agent turn settings out of range; using the server's",
                extra={"agent_id": agent.id},
            )
            return base


def _known(stored: Mapping[str, Any], model: type[TurnSettings]) -> dict[str, Any]:
    return {key: value for key, value in stored.items() if key in model.model_fields}
