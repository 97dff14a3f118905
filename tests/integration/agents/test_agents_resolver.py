"""The agent store and resolver on SQLite and PostgreSQL, with counting fake models.

A real `Runtime` runs in-process with a registry of fakes, so each test can see which model
was built how often and which chain object a session gets.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from voxdialog.agents.stages import AgentStages, UnknownAgentError
from voxdialog.agents.voicing import pitch_factor
from voxdialog.brain.assistant import TaskAssistant
from voxdialog.brain.llm_brain import LLMBrain
from voxdialog.db.repos.agents import (
    AgentFields,
    AgentNameTakenError,
    AgentNotFoundError,
    create_agent,
    delete_agent,
    get_agent,
    list_agents,
    update_agent,
)
from voxdialog.db.repos.users import create_account
from voxdialog.providers.base import VoiceSettings
from voxdialog.providers.registry import ProviderRegistry
from voxdialog.runtime import Runtime
from voxdialog.security.principal import Scope
from voxdialog.settings import ProviderSettings, Settings
from voxdialog.testing.databases import (
    BACKENDS,
    Backend,
    create_postgres_database,
    drop_postgres_database,
    postgres_available,
    sqlite_url,
)
from voxdialog.testing.fakes import FakeSTT, FakeTTS, FakeVAD

_P = TypeVar("_P")
PROMPT = "You are Ada, a terse librarian."


def counting(built: Counter[str], name: str, factory: Callable[[], _P]) -> Callable[[], _P]:
    def build() -> _P:
        built[name] += 1
        return factory()

    return build


def fake_registry(built: Counter[str]) -> ProviderRegistry:
    registry = ProviderRegistry()
    registry.register_vad("silero", FakeVAD)
    registry.register_stt("whisper", counting(built, "whisper", FakeSTT))
    registry.register_stt("other-stt", counting(built, "other-stt", FakeSTT))
    registry.register_tts("piper", counting(built, "piper", FakeTTS))
    registry.register_tts("other-tts", counting(built, "other-tts", FakeTTS))
    return registry


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of this test's own, on each backend."""
    backend: Backend = request.param
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "agents.db")
        return
    if not await postgres_available():
        message = "PostgreSQL is not reachable (set VOXDIALOG_TEST_POSTGRES_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    url = await create_postgres_database("vxagents")
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
def built() -> Counter[str]:
    """How many times each fake model was built."""
    return Counter()


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path, built: Counter[str]) -> AsyncIterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        # Declared, never called: building a brain does not reach the model.
        providers={
            "remote-llm": ProviderSettings(kind="openai_compatible", base_url="http://127.0.0.1:9")
        },
    )
    rt = Runtime(settings, registry=fake_registry(built))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.close()


async def new_scope(runtime: Runtime, *, tenant_id: str | None = None) -> Scope:
    user = await create_account(
        runtime.db,
        email=f"{os.urandom(6).hex()}@example.com",
        password_hash="unused",
        display_name="someone",
        tenant_name="acme",
        tenant_id=tenant_id,
    )
    return user.scope


async def stages_of(runtime: Runtime, scope: Scope, **fields: Any) -> AgentStages:
    agent = await create_agent(
        runtime.db, scope, AgentFields(name=fields.pop("name", os.urandom(4).hex()), **fields)
    )
    return await runtime.agent_for(scope, agent.id)


async def test_agents_naming_the_same_chain_share_it_and_models_load_once(
    runtime: Runtime, built: Counter[str]
) -> None:
    scope = await new_scope(runtime)
    chains = {"stt": ["other-stt", "whisper"], "tts": ["other-tts"]}
    first = await create_agent(runtime.db, scope, AgentFields(name="one", **chains))
    second = await create_agent(runtime.db, scope, AgentFields(name="two", **chains))
    sessions = await asyncio.gather(
        *(runtime.agent_for(scope, ref) for ref in [first.id, second.id, "ONE", "two"] * 3)
    )
    assert len({id(s.stt) for s in sessions}) == 1
    assert len({id(s.tts) for s in sessions}) == 1
    assert sessions[0].stt is not runtime.stt
    assert built == {"whisper": 1, "piper": 1, "other-stt": 1, "other-tts": 1}
    # An agent naming the server's own chain gets the very same one.
    same = await stages_of(runtime, scope, stt=["whisper"], tts=["piper"])
    assert same.stt is runtime.stt
    assert same.tts is runtime.tts


async def test_the_agents_rate_pitch_and_volume_reach_the_provider(runtime: Runtime) -> None:
    scope = await new_scope(runtime)
    voice = {"voice": "nova", "rate": 1.5, "pitch": 3.0, "volume": 0.5}
    stages = await stages_of(runtime, scope, tts=["other-tts", "piper"], voice=voice)
    speaker = runtime.registry.tts("other-tts")
    assert isinstance(speaker, FakeTTS)
    reply_tts: Any = stages.tts
    # The pipeline speaks through the chain's per-reply view; the rate must survive it.
    async for _ in reply_tts.for_reply().synthesize("Hello.", voice=VoiceSettings(speed=1.2)):
        pass
    # 1.2 asked x 1.5 the agent's rate, slowed by the pitch factor that resampling restores.
    assert speaker.voices[-1].speed == pytest.approx(1.8 / pitch_factor(3.0))
    assert speaker.voices[-1].volume == pytest.approx(0.5)
    assert stages.voice == "nova"
    plain = await stages_of(runtime, scope, tts=["other-tts"])
    assert plain.tts is speaker  # no rate, no wrapper


async def test_turns_greeting_and_name_come_from_the_agent(runtime: Runtime) -> None:
    scope = await new_scope(runtime)
    stages = await stages_of(
        runtime,
        scope,
        name="Ada",
        greeting="Hello, I am Ada.",
        turn_detection={"silence_duration_ms": 900, "threshold": 0.7},
    )
    server = runtime.settings.turns
    assert stages.name == "Ada"
    assert stages.greeting == "Hello, I am Ada."
    assert stages.turns.silence_duration_ms == 900
    assert stages.turns.threshold == 0.7
    assert stages.turns.model_dump(exclude={"silence_duration_ms", "threshold"}) == (
        server.model_dump(exclude={"silence_duration_ms", "threshold"})
    )
    # Out-of-range values stored before a limit changed fall back to the server's.
    stale = await stages_of(runtime, scope, turn_detection={"silence_duration_ms": 5})
    assert stale.turns == server


async def test_a_persona_gets_an_llm_brain_with_its_prompt_on_a_shared_chain(
    runtime: Runtime,
) -> None:
    scope = await new_scope(runtime)
    ada = await stages_of(runtime, scope, system_prompt=PROMPT, llm=["remote-llm"])
    bob = await stages_of(runtime, scope, llm=["remote-llm"])
    assert isinstance(ada.brain, LLMBrain)
    assert isinstance(bob.brain, LLMBrain)
    assert ada.brain.settings.system_prompt == PROMPT
    assert bob.brain.settings.system_prompt == runtime.settings.agent.system_prompt
    assert ada.brain.llm is bob.brain.llm
    assert isinstance(ada.brain.fallback, TaskAssistant)
    # The server has no LLM of its own: a persona without a chain gets the built-in assistant.
    plain = await stages_of(runtime, scope, system_prompt=PROMPT)
    assert plain.brain is runtime.brain
    assert isinstance(plain.brain, TaskAssistant)


async def test_a_provider_removed_from_the_settings_falls_back_to_the_servers(
    runtime: Runtime,
) -> None:
    scope = await new_scope(runtime)
    stages = await stages_of(runtime, scope, stt=["gone-stt"], tts=["gone-tts"], llm=["gone"])
    assert stages.stt is runtime.stt
    assert stages.tts is runtime.tts
    assert stages.brain is runtime.brain


async def test_only_the_callers_tenant_resolves(runtime: Runtime) -> None:
    owner = await new_scope(runtime)
    colleague = await new_scope(runtime, tenant_id=owner.tenant_id)
    stranger = await new_scope(runtime)
    agent = await create_agent(runtime.db, owner, AgentFields(name="Shared"))
    assert (await runtime.agent_for(colleague, agent.id)).agent_id == agent.id
    assert (await runtime.agent_for(colleague, "shared")).agent_id == agent.id
    for ref in (agent.id, "Shared", "nobody"):
        with pytest.raises(UnknownAgentError):
            await runtime.agent_for(stranger, ref)
    for ref in (None, "", "default"):
        assert (await runtime.agent_for(stranger, ref)).agent_id == "default"


async def test_the_store_keeps_names_unique_per_tenant_and_queries_in_the_tenant(
    runtime: Runtime,
) -> None:
    db = runtime.db
    alice = await new_scope(runtime)
    bob = await new_scope(runtime)
    first = await create_agent(db, alice, AgentFields(name="Helper", tools=["list_tasks"]))
    with pytest.raises(AgentNameTakenError):
        await create_agent(db, alice, AgentFields(name="  hELPER "))
    await create_agent(db, bob, AgentFields(name="Helper"))
    second = await create_agent(db, alice, AgentFields(name="Second"))
    with pytest.raises(AgentNameTakenError):
        await update_agent(db, alice.tenant_id, second.id, {"name": "HELPER"})
    with pytest.raises(ValueError, match="tenant_id"):
        await update_agent(db, alice.tenant_id, second.id, {"tenant_id": bob.tenant_id})

    assert await get_agent(db, alice.tenant_id, "helper") == first
    assert await get_agent(db, bob.tenant_id, first.id) is None
    assert await update_agent(db, bob.tenant_id, first.id, {"name": "Mine"}) is None
    assert not await delete_agent(db, bob.tenant_id, first.id)
    assert [a.id for a in await list_agents(db, alice.tenant_id, 10)] == [first.id, second.id]
    assert [a.id for a in await list_agents(db, alice.tenant_id, 10, after=first.id)] == [second.id]
    with pytest.raises(AgentNotFoundError):
        await list_agents(db, bob.tenant_id, 10, after=first.id)

    renamed = await update_agent(db, alice.tenant_id, first.id, {"name": "Renamed"})
    assert renamed is not None
    assert renamed.name == "Renamed"
    assert renamed.tools == ("list_tasks",)
    assert renamed.updated_at >= first.updated_at
    assert await get_agent(db, alice.tenant_id, "renamed") == renamed
    assert await get_agent(db, alice.tenant_id, "helper") is None
    assert await delete_agent(db, alice.tenant_id, first.id)
    assert await get_agent(db, alice.tenant_id, first.id) is None
