"""The Realtime sessions open in this process: caps, and what the admin page shows of them.

With several worker processes (``voxdialog serve --workers N``) the caps, takeovers and the
admin's view span them all: a `SessionDirectory` (``workers/directory.py``, backed by the
supervisor) holds every process's sessions, and `LiveSessions` asks it before admitting one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from voxdialog.observability.metrics import ACTIVE_SESSIONS


@dataclass(slots=True)
class LiveSession:
    """One open session as operators see it (no content, only who, what and how fast).

    Attributes:
        state: ``listening``, ``thinking`` or ``speaking``, updated by the connection.
        last_turn_ms: End of the user's speech to the first reply audio of the last turn.
    """

    session_id: str
    tenant_id: str
    user_id: str
    agent: str
    client: str
    #: The agent's display name (``agent`` is its id).
    agent_name: str = ""
    started_at: float = field(default_factory=time.time)
    state: str = "listening"
    turns: int = 0
    last_turn_ms: float | None = None
    #: Which worker process holds it (1..N; 0 when the server runs as one process).
    worker: int = 0
    #: Set by the connection: asks it to end because the conversation continues elsewhere.
    take_over: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    #: Set by the connection: asks it to say goodbye (the server is shutting down).
    shut_down: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    #: Set once the session is gone from the registry.
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)

    @property
    def duration_s(self) -> float:
        """Seconds since the session opened."""
        return max(0.0, time.time() - self.started_at)


class SessionBusy(Exception):
    """A session with this id is already open (a conversation resumed twice at once)."""


class TooManySessions(Exception):
    """The process or the user has reached its session cap."""

    def __init__(self, per_user: bool) -> None:
        super().__init__("per-user session cap" if per_user else "process session cap")
        self.per_user = per_user


class SessionDirectory(Protocol):
    """The sessions open in every worker process of one server, kept by the supervisor."""

    async def claim(self, session: LiveSession, *, limit: int, per_user_limit: int) -> None:
        """Count ``session`` against the server's caps.

        Raises:
            SessionBusy: The id is open in some process.
            TooManySessions: A cap is reached.
        """
        ...

    def release(self, session_id: str) -> None:
        """The session ended here (sent at once, not waited for)."""
        ...

    def publish(self, session: LiveSession) -> None:
        """Its state or turn count changed (for the admin's view; not waited for)."""
        ...

    async def take_over(self, session_id: str, user_id: str, *, timeout_s: float) -> bool:
        """Ask the process that holds ``session_id`` to end it; see `LiveSessions.take_over`."""
        ...

    async def listing(self, tenant_id: str | None) -> list[LiveSession]:
        """The open sessions of every process (of one tenant, or all when None)."""
        ...

    async def is_open(self, session_id: str) -> bool:
        """Whether ``session_id`` is open in any process."""
        ...


@dataclass(slots=True)
class LiveSessions:
    """Registers sessions under a server-wide and a per-user cap.

    Alone, the caps count this process's sessions; with a ``directory`` they count every
    worker's, and a takeover or listing reaches the other workers too.
    """

    limit: int
    per_user_limit: int = 10
    sessions: dict[str, LiveSession] = field(default_factory=dict)
    #: The process is shutting down: no new sessions, the open ones finish their replies.
    draining: bool = False
    directory: SessionDirectory | None = None

    @property
    def active(self) -> set[str]:
        """Ids of the sessions open in this process."""
        return set(self.sessions)

    async def add(self, session: LiveSession) -> None:
        """Register a session.

        Raises:
            SessionBusy: The id is already open.
            TooManySessions: A cap is reached.
        """
        if session.session_id in self.sessions:
            raise SessionBusy(session.session_id)
        if self.directory is not None:
            await self.directory.claim(
                session, limit=self.limit, per_user_limit=self.per_user_limit
            )
        else:
            self._check_caps(session)
        self.sessions[session.session_id] = session
        ACTIVE_SESSIONS.set(len(self.sessions))

    def _check_caps(self, session: LiveSession) -> None:
        if len(self.sessions) >= self.limit:
            raise TooManySessions(per_user=False)
        mine = sum(1 for s in self.sessions.values() if s.user_id == session.user_id)
        if mine >= self.per_user_limit:
            raise TooManySessions(per_user=True)

    def remove(self, session_id: str) -> None:
        """Forget a session."""
        session = self.sessions.pop(session_id, None)
        if session is not None:
            session.ended.set()
            if self.directory is not None:
                self.directory.release(session_id)
        ACTIVE_SESSIONS.set(len(self.sessions))

    def publish(self, session: LiveSession) -> None:
        """Tell the other workers of a change in what the admin's view shows of ``session``."""
        if self.directory is not None and session.session_id in self.sessions:
            self.directory.publish(session)

    def end_for_takeover(self, session_id: str) -> None:
        """Another worker resumes ``session_id``: ask its connection here to end."""
        session = self.sessions.get(session_id)
        if session is not None and session.take_over is not None:
            session.take_over()

    async def is_open(self, session_id: str) -> bool:
        """Whether the session is open in this process or (with a directory) any other."""
        if session_id in self.sessions:
            return True
        return self.directory is not None and await self.directory.is_open(session_id)

    async def count_every_worker(self) -> None:
        """Set the active-sessions gauge to the server's count (with workers: all of them)."""
        if self.directory is not None:
            ACTIVE_SESSIONS.set(len(await self.directory.listing(None)))

    async def listing(self, tenant_id: str | None) -> list[LiveSession]:
        """Open sessions of one tenant (every tenant when None) in every process, oldest first."""
        if self.directory is None:
            return self.visible_to(tenant_id)
        return sorted(await self.directory.listing(tenant_id), key=lambda s: s.started_at)

    async def take_over(self, session_id: str, user_id: str, *, timeout_s: float) -> bool:
        """End ``user_id``'s open session ``session_id`` so a reconnect can continue it.

        A client that reconnects after a dropped socket is usually faster than the server at
        noticing the drop (a half-open socket may stay "open" until its idle timeout): the new
        connection wins. Returns True once the id is free, False if it belongs to another user
        or does not close within ``timeout_s``.
        """
        old = self.sessions.get(session_id)
        if old is None:
            if self.directory is None:
                return True
            return await self.directory.take_over(session_id, user_id, timeout_s=timeout_s)
        if old.user_id != user_id:
            return False
        if old.take_over is not None:
            old.take_over()
        try:
            async with asyncio.timeout(timeout_s):
                await old.ended.wait()
        except TimeoutError:
            return False
        return True

    async def drain(self, *, timeout_s: float, goodbye_s: float = 5.0) -> None:
        """Stop admitting, let replies in progress finish (up to ``timeout_s``), then ask every
        session to say goodbye and wait (up to ``goodbye_s``) until they have left."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # ``state`` is a plain field the connections update: polled, 20 times a second.
        while loop.time() < deadline and any(  # noqa: ASYNC110
            s.state != "listening" for s in self.sessions.values()
        ):
            await asyncio.sleep(0.05)
        open_now = list(self.sessions.values())
        for session in open_now:
            if session.shut_down is not None:
                session.shut_down()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(goodbye_s):
                await asyncio.gather(*(s.ended.wait() for s in open_now))

    def visible_to(self, tenant_id: str | None) -> list[LiveSession]:
        """Open sessions of one tenant (every tenant when None) in this process, oldest first."""
        return sorted(
            (s for s in self.sessions.values() if tenant_id is None or s.tenant_id == tenant_id),
            key=lambda s: s.started_at,
        )
