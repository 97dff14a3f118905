"""Runtime: the long-lived objects of a server process (database, models, brain, auth)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from voxdialog.brain.assistant import TaskAssistant
from voxdialog.brain.base import Brain, Scope
from voxdialog.brain.llm_brain import LLMBrain
from voxdialog.db.engine import Database
from voxdialog.db.migrate import migrate
from voxdialog.db.recorder import SqlTurnRecorder
from voxdialog.db.repos.accounts import ensure_local_admin
from voxdialog.db.repos.api_keys import create_api_key, verify_api_key
from voxdialog.db.repos.sessions import close_stale_sessions
from voxdialog.db.repos.tasks import SqlTaskStore
from voxdialog.observability.metrics import ACTIVE_SESSIONS
from voxdialog.providers.assembly import ProviderAssembly
from voxdialog.providers.base import LLM, STT, TTS, VAD
from voxdialog.providers.registry import ProviderRegistry, default_registry
from voxdialog.security.tokens import TokenSigner, load_or_create_secret
from voxdialog.settings import Settings

log = logging.getLogger(__name__)

LOCAL_KEY_FILE = "local-api-key"
TOKEN_KEY_FILE = "token-key"


@dataclass(slots=True)
class LiveSessions:
    """Counts the Realtime sessions of this process, under a cap."""

    limit: int
    active: set[str] = field(default_factory=set)

    def try_add(self, session_id: str) -> bool:
        """Register a session; False when the cap is reached."""
        if len(self.active) >= self.limit:
            return False
        self.active.add(session_id)
        ACTIVE_SESSIONS.set(len(self.active))
        return True

    def remove(self, session_id: str) -> None:
        """Forget a session."""
        self.active.discard(session_id)
        ACTIVE_SESSIONS.set(len(self.active))


class Runtime:
    """Builds, holds and closes the process-wide objects. One per server or CLI run."""

    def __init__(self, settings: Settings, *, registry: ProviderRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or default_registry(settings.models)
        self.db = Database(settings.effective_database_url)
        self.recorder = SqlTurnRecorder(self.db)
        self.tasks = SqlTaskStore(self.db)
        self.brain: Brain = TaskAssistant(self.tasks)
        self.sessions = LiveSessions(settings.limits.max_sessions)
        self.local_scope: Scope | None = None
        self.signer: TokenSigner | None = None
        self.vad: VAD | None = None
        self.stt: STT | None = None
        self.tts: TTS | None = None
        self.new_local_key: str | None = None
        self.assembly = ProviderAssembly(self.registry, settings.providers, settings.chain)
        self.llm: LLM | None = None
        # Health probes of provider chains; owned here, cancelled in close().
        self._background: set[asyncio.Task[None]] = set()

    async def start(self, *, load_models: bool = True) -> None:
        """Migrate the database, bootstrap access, load the models."""
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        await migrate(self.settings.effective_database_url)
        await close_stale_sessions(self.db)
        admin = await ensure_local_admin(self.db)
        self.local_scope = admin.scope
        if admin.created:
            log.info("created the default local admin user and agent")
        await self._ensure_local_key(data_dir / LOCAL_KEY_FILE)
        self.signer = TokenSigner(load_or_create_secret(data_dir / TOKEN_KEY_FILE))
        if load_models:
            await self.load_models()

    async def load_models(self) -> None:
        """Build the default agent's stages (local models load once, in worker threads)."""
        agent = self.settings.agent
        self.vad = await asyncio.to_thread(self.registry.vad, "silero")
        self.stt = await asyncio.to_thread(self.assembly.stt, agent.stt)
        self.tts = await asyncio.to_thread(self.assembly.tts, agent.tts)
        self.llm = self.assembly.llm(agent.llm, agent.routes)
        if self.llm is not None:
            # Task intents go to tools; if every LLM is down, the built-in assistant answers.
            self.brain = LLMBrain(
                self.llm, self.tasks, settings=agent, fallback=TaskAssistant(self.tasks)
            )
        for chain in self.assembly.chains:
            self._background.add(asyncio.create_task(chain.probe_loop()))
        for provider in (self.stt, self.tts):
            warmup = getattr(provider, "warmup", None)
            if warmup is not None:
                await warmup()
        log.info(
            "local models ready",
            extra={
                "vad": self.vad.info.model,
                "stt": self.stt.info.model,
                "tts": self.tts.info.model,
            },
        )

    async def close(self) -> None:
        """Stop background probes; release the database."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await self.assembly.aclose()
        await self.db.close()

    async def _ensure_local_key(self, path: Path) -> None:
        if self.local_scope is None or await asyncio.to_thread(path.exists):
            return
        key, _ = await create_api_key(self.db, self.local_scope, "local")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        # The key itself is shown once by the caller (on the console), never logged.
        self.new_local_key = key
        log.info("created a local API key", extra={"path": str(path)})

    async def authenticate(
        self, credential: str | None, *, allow_token: bool = True
    ) -> Scope | None:
        """The scope a bearer credential (API key or page token) grants, or None."""
        if not credential:
            return None
        if not self.settings.auth_required:
            return self.local_scope
        if allow_token and self.signer is not None and credential.startswith("vxt."):
            claims = self.signer.verify(credential, typ="realtime")
            return claims.scope if claims else None
        return await verify_api_key(self.db, credential)
