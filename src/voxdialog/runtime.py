"""Runtime: the long-lived objects of a server process (database, models, brain, auth)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from voxdialog.accounts.service import AuthService
from voxdialog.agents.resolver import AgentResolver
from voxdialog.agents.stages import DEFAULT_AGENT, AgentStages
from voxdialog.brain.assistant import TaskAssistant
from voxdialog.brain.base import Brain, HistoryMessage
from voxdialog.brain.llm_brain import LLMBrain
from voxdialog.context.cache import ContextCache
from voxdialog.context.recorder import ContextRecorder, context_key
from voxdialog.db.engine import Database
from voxdialog.db.migrate import migrate
from voxdialog.db.recorder import SqlTurnRecorder
from voxdialog.db.repos.accounts import ensure_local_admin
from voxdialog.db.repos.api_keys import create_api_key
from voxdialog.db.repos.history import parse_context_key, recent_history
from voxdialog.db.repos.sessions import close_stale_sessions
from voxdialog.db.repos.tasks import SqlTaskStore
from voxdialog.live import LiveSessions
from voxdialog.observability.loop_lag import LoopLoad, sample_loop_lag
from voxdialog.pipeline.scoring import ThreadedScorer
from voxdialog.providers.assembly import ProviderAssembly
from voxdialog.providers.base import LLM, STT, TTS, VAD, warm_up
from voxdialog.providers.registry import ProviderRegistry, default_registry
from voxdialog.security.crypto import FieldCipher, parse_keyring
from voxdialog.security.files import private_dir
from voxdialog.security.jwt import JwtService, key_from_setting, load_or_create_key
from voxdialog.security.passwords import PasswordHasher
from voxdialog.security.principal import ADMIN, Principal, Scope
from voxdialog.security.ratelimit import Limit, LoginThrottle, RateLimiter, make_rate_limiter
from voxdialog.security.tickets import make_spent_tickets
from voxdialog.settings import Settings

if TYPE_CHECKING:
    from voxdialog.workers.directory import CoordinatorDirectory

log = logging.getLogger(__name__)

LOCAL_KEY_FILE = "local-api-key"
#: Set by the supervisor in each worker process (not a setting: the supervisor chooses it).
WORKER_INDEX_ENV = "VOXDIALOG_WORKER_INDEX"
JWT_KEY_FILE = "jwt-key"


class Runtime:
    """Builds, holds and closes the process-wide objects. One per server or CLI run."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: ProviderRegistry | None = None,
        directory_path: Path | None = None,
    ) -> None:
        """Build the objects (nothing is opened until ``start``).

        Args:
            directory_path: Set in a worker process: the supervisor's session registry, which
                holds the caps and takeovers of every worker; the supervisor prepared the data.
        """
        self.settings = settings
        self._directory_path = directory_path
        #: Which worker this process is (``serve --workers``); 0 when it serves alone.
        self.worker_index = int(os.environ.get(WORKER_INDEX_ENV, "0") or 0)
        self.registry = registry or default_registry(settings.models)
        self.db = Database(settings.effective_database_url)
        if settings.encryption_key is not None:
            # A malformed key stops the start: running without the promised encryption is worse.
            self.db.cipher = FieldCipher(parse_keyring(settings.encryption_key.get_secret_value()))
        self.context = ContextCache(self._load_context)
        self.recorder = ContextRecorder(SqlTurnRecorder(self.db), self.context)
        self.tasks = SqlTaskStore(self.db)
        self.brain: Brain = TaskAssistant(self.tasks)
        self.sessions = LiveSessions(
            settings.limits.max_sessions, per_user_limit=settings.rate_limits.ws_per_user
        )
        #: How late the event loop runs (smoothed): admission refuses sessions past a limit.
        self.loop_load = LoopLoad()
        #: Runs every Realtime session's VAD off the event loop, a batch of sessions at a time.
        self.frame_scorer = ThreadedScorer()
        self.local_scope: Scope | None = None
        self.limiter: RateLimiter = make_rate_limiter(settings.redis_url)
        self.auth: AuthService | None = None
        self.vad: VAD | None = None
        self.stt: STT | None = None
        self.tts: TTS | None = None
        # Always None: the key is shown by `_announce_local_key` (terminal only), never logged.
        # Kept while app.py still reads it.
        self.new_local_key: str | None = None
        self.assembly = ProviderAssembly(self.registry, settings.providers, settings.chain)
        self.llm: LLM | None = None
        self.agents: AgentResolver | None = None  # built with the default agent's stages
        self._directory: CoordinatorDirectory | None = None
        # Health probes of provider chains; owned here, cancelled in close().
        self._background: set[asyncio.Task[None]] = set()

    async def start(self, *, load_models: bool = True) -> None:
        """Migrate the database, bootstrap access, load the models."""
        data_dir = self.settings.data_dir
        private_dir(data_dir)  # database, keys and audio: other local users keep out
        await migrate(self.settings.effective_database_url)
        if self._directory_path is None:
            # A worker's siblings are live: only the supervisor (or a lone server) may do this.
            await close_stale_sessions(self.db)
        else:
            await self._join_siblings(self._directory_path)
        admin = await ensure_local_admin(self.db)
        self.local_scope = admin.scope
        if admin.created:
            log.info("created the default local admin user and agent")
        await self._ensure_local_key(data_dir / LOCAL_KEY_FILE)
        self.auth = self._auth_service(data_dir)
        self._background.add(asyncio.create_task(self.context.run_cleanup()))
        self._background.add(asyncio.create_task(sample_loop_lag(load=self.loop_load)))
        self.auth.operator_tenant_id = admin.scope.tenant_id
        if load_models:
            await self.load_models()

    async def _join_siblings(self, path: Path) -> None:
        from voxdialog.workers.directory import CoordinatorDirectory

        directory = CoordinatorDirectory(path, on_take_over=self.sessions.end_for_takeover)
        await directory.connect()
        self.sessions.directory = directory
        self._directory = directory

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
            await warm_up(provider)
        self.agents = AgentResolver(
            db=self.db,
            settings=self.settings,
            assembly=self.assembly,
            registry=self.registry,
            tasks=self.tasks,
            default=AgentStages(
                agent_id=DEFAULT_AGENT,
                name=DEFAULT_AGENT,
                stt=self.stt,
                tts=self.tts,
                brain=self.brain,
                turns=self.settings.turns,
            ),
            default_llm=self.llm,
        )
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
        await self.frame_scorer.close()
        if self._directory is not None:
            await self._directory.aclose()
        if self.agents is not None:
            await self.agents.aclose()
        await self.assembly.aclose()
        if self.auth is not None:
            await self.auth.spent.aclose()
        await self.limiter.aclose()
        await self.db.close()

    async def _ensure_local_key(self, path: Path) -> None:
        if self.local_scope is None or await asyncio.to_thread(path.exists):
            return
        key, _ = await create_api_key(self.db, self.local_scope, "local")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        _announce_local_key(key, path)

    async def _load_context(self, key: str) -> list[HistoryMessage]:
        scope, conversation_id = parse_context_key(key)
        return await recent_history(self.db, scope, conversation_id)

    async def resume_context(self, scope: Scope, conversation_id: str) -> list[HistoryMessage]:
        """The recent messages of one of the scope's conversations (cache, else database)."""
        key = context_key(scope, conversation_id)
        async with self.context.lock(key):
            return await self.context.get(key)

    def _auth_service(self, data_dir: Path) -> AuthService:
        auth = self.settings.auth
        secret = auth.jwt_secret
        # A configured key shorter than 32 bytes stops the start (RFC 8725 / R10).
        key = (
            key_from_setting(secret.get_secret_value())
            if secret is not None
            else load_or_create_key(data_dir / JWT_KEY_FILE)
        )
        jwt = JwtService(
            key,
            access_ttl_s=auth.access_ttl_s,
            refresh_ttl_s=auth.refresh_ttl_s,
            ticket_ttl_s=auth.ticket_ttl_s,
        )
        limits = self.settings.rate_limits
        throttle = LoginThrottle(
            self.limiter,
            per_pair=Limit(limits.login_per_account, limits.window_s),
            per_ip=Limit(limits.login_per_ip, limits.window_s),
            per_account=Limit(limits.login_account_ceiling, limits.login_ceiling_window_s),
        )
        return AuthService(
            self.db,
            jwt,
            PasswordHasher(),
            throttle,
            make_spent_tickets(self.settings.redis_url),
            registration_open=auth.registration_open,
        )

    @property
    def local_principal(self) -> Principal | None:
        """The local administrator (who acts when auth is off, or for the page on localhost)."""
        if self.local_scope is None:
            return None
        return Principal(self.local_scope, ADMIN, "local", operator=True)

    async def agent_for(self, scope: Scope, ref: str | None) -> AgentStages:
        """The stages of agent ``ref`` (id or name in the caller's tenant), or the default.

        Raises:
            UnknownAgentError: No such agent in the caller's tenant.
            RuntimeError: The models are not loaded.
        """
        if self.agents is None:
            raise RuntimeError("models are not loaded")
        return await self.agents.resolve(scope, ref)

    async def authenticate(self, credential: str | None) -> Principal | None:
        """The caller a bearer credential (API key or access token) stands for, or None."""
        if not self.settings.auth_required:
            return self.local_principal
        if not credential or self.auth is None:
            return None
        return await self.auth.authenticate(credential)


def _announce_local_key(key: str, path: Path) -> None:
    """Show a new local API key once, to a person at a terminal; otherwise say where it is.

    A stderr that is not a terminal is a log (systemd, ``docker logs``, ``2>file``), and a log
    never holds a credential: then only the 0600 key file has it.
    """
    if sys.stderr.isatty():
        sys.stderr.write(f"\nVoxDialog local API key (also in {path}):\n    {key}\n\n")
        sys.stderr.flush()
    log.info("created a local API key; it is in the file named by path", extra={"path": str(path)})
