"""A worker's view of every worker's sessions: the `SessionDirectory` that asks the supervisor.

One Unix-socket connection per worker process to ``workers/coordinator.py``. Releases and state
changes are written without waiting; claims, takeovers and listings wait for their answer. If
the supervisor goes away the worker cannot keep the server's caps, so it stops taking sessions
(every claim is refused) and asks itself to shut down (SIGTERM: it drains like any stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voxdialog.live import LiveSession, SessionBusy, TooManySessions
from voxdialog.workers.coordinator import MAX_LINE

log = logging.getLogger(__name__)

#: How long a claim, listing or lookup waits for the supervisor before failing.
_ANSWER_S = 5.0


def entry_of(session: LiveSession) -> dict[str, Any]:
    """What the registry keeps of a session (no content)."""
    return {
        "id": session.session_id,
        "t": session.tenant_id,
        "u": session.user_id,
        "agent": session.agent,
        "agent_name": session.agent_name,
        "client": session.client,
        "started_at": session.started_at,
        "state": session.state,
        "turns": session.turns,
        "last_turn_ms": session.last_turn_ms,
        "worker": session.worker,
    }


def session_of(entry: dict[str, Any]) -> LiveSession:
    """A registry entry as the admin view shows it."""
    return LiveSession(
        session_id=str(entry["id"]),
        tenant_id=str(entry["t"]),
        user_id=str(entry["u"]),
        agent=str(entry.get("agent", "")),
        client=str(entry.get("client", "")),
        agent_name=str(entry.get("agent_name", "")),
        started_at=float(entry.get("started_at", 0.0)),
        state=str(entry.get("state", "listening")),
        turns=int(entry.get("turns", 0)),
        last_turn_ms=entry.get("last_turn_ms"),
        worker=int(entry.get("worker", 0)),
    )


class RegistryUnavailable(TooManySessions):
    """The supervisor cannot be reached: no session is admitted (the caps cannot be kept)."""

    def __init__(self) -> None:
        super().__init__(per_user=False)


class CoordinatorDirectory:
    """`SessionDirectory` over the supervisor's socket at ``path``.

    Args:
        path: The coordinator's Unix socket.
        on_take_over: Called with a session id this worker holds that another worker resumes.
        on_lost: Called once if the connection to the supervisor is lost (default: SIGTERM to
            this process, so it drains and exits; the supervisor, if alive, starts another).
    """

    def __init__(
        self,
        path: Path,
        *,
        on_take_over: Callable[[str], None],
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._path = path
        self._on_take_over = on_take_over
        self._on_lost = on_lost or (lambda: os.kill(os.getpid(), signal.SIGTERM))
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._numbers = itertools.count(1)
        self._lost = False

    async def connect(self) -> None:
        """Open the connection and start reading the supervisor's messages."""
        reader, self._writer = await asyncio.open_unix_connection(str(self._path), limit=MAX_LINE)
        self._reader_task = asyncio.create_task(self._read(reader), name="registry-reader")

    async def aclose(self) -> None:
        """Close the connection (the supervisor then forgets this worker's sessions)."""
        self._lost = True  # a close of our own is not a lost supervisor
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    # --- SessionDirectory ------------------------------------------------------------------

    async def claim(self, session: LiveSession, *, limit: int, per_user_limit: int) -> None:
        """See `SessionDirectory.claim`."""
        message = {"entry": entry_of(session), "limit": limit, "per_user_limit": per_user_limit}
        result = await self._ask("claim", message)
        if result == "busy":
            raise SessionBusy(session.session_id)
        if result in ("cap", "user_cap"):
            raise TooManySessions(per_user=result == "user_cap")

    def release(self, session_id: str) -> None:
        """See `SessionDirectory.release`."""
        self._tell({"op": "release", "id": session_id})

    def publish(self, session: LiveSession) -> None:
        """See `SessionDirectory.publish`."""
        self._tell({"op": "publish", "entry": entry_of(session)})

    async def take_over(self, session_id: str, user_id: str, *, timeout_s: float) -> bool:
        """See `SessionDirectory.take_over`."""
        message = {"id": session_id, "user": user_id, "timeout_s": timeout_s}
        return bool(await self._ask("take_over", message, wait_s=timeout_s + _ANSWER_S))

    async def listing(self, tenant_id: str | None) -> list[LiveSession]:
        """See `SessionDirectory.listing`."""
        entries = await self._ask("list", {"tenant": tenant_id})
        return [session_of(entry) for entry in entries]

    async def is_open(self, session_id: str) -> bool:
        """See `SessionDirectory.is_open`."""
        return bool(await self._ask("is_open", {"id": session_id}))

    # --- the connection --------------------------------------------------------------------

    def _tell(self, message: dict[str, Any]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(json.dumps(message).encode() + b"\n")

    async def _ask(self, op: str, message: dict[str, Any], *, wait_s: float = _ANSWER_S) -> Any:
        if self._writer is None or self._writer.is_closing() or self._lost:
            raise RegistryUnavailable()
        number = next(self._numbers)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[number] = answer
        self._tell({**message, "op": op, "req": number})
        try:
            async with asyncio.timeout(wait_s):
                return await answer
        except TimeoutError:
            raise RegistryUnavailable() from None
        finally:
            self._waiting.pop(number, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                self._dispatch(json.loads(line))
        except (ConnectionError, ValueError, asyncio.LimitOverrunError) as e:
            log.error("the supervisor's session registry failed: %s", e)
        if not self._lost:
            self._lost = True
            log.error("lost the supervisor's session registry; this worker stops")
            for answer in self._waiting.values():
                if not answer.done():
                    answer.set_exception(RegistryUnavailable())
            self._on_lost()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("op") == "take_over":
            self._on_take_over(str(message["id"]))
            return
        answer = self._waiting.get(int(message.get("req") or 0))
        if answer is None or answer.done():
            return
        if "error" in message:
            answer.set_exception(RuntimeError(str(message["error"])))
        else:
            answer.set_result(message.get("result"))
