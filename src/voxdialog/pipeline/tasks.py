"""SessionTasks: every task of one session, owned by one TaskGroup.

Closing the session (or a failure inside it) ends them all and touches no other session.
Each task carries the session's (and its turn's) ids in its log records.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from voxdialog.observability.logging import log_context

log = logging.getLogger(__name__)

T = TypeVar("T")


class SessionTasks:
    """The task group of one session.

    Args:
        session_id: For the log records of every task.
        on_failure: Called when a guarded task fails with a bug (the session goes on).
    """

    def __init__(self, session_id: str, *, on_failure: Callable[[], Awaitable[None]]) -> None:
        self.session_id = session_id
        self._on_failure = on_failure
        self._tg: asyncio.TaskGroup | None = None
        self.closed = asyncio.Event()
        self.running = asyncio.Event()

    async def own(self, on_close: Callable[[], Awaitable[None]]) -> None:
        """Run the task group until ``close()``; ``on_close`` winds down what must stop."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self.running.set()
                await self.closed.wait()
                await on_close()
        finally:
            self._tg = None

    def close(self) -> None:
        """End the task group (``own`` returns once its tasks are gone)."""
        self.closed.set()

    def task(self, coro: Coroutine[Any, Any, T], *, turn_id: str | None) -> asyncio.Task[T]:
        """A task whose failure is its own business (it must not raise: speculation, partials)."""
        return self._create(coro, turn_id=turn_id)

    def spawn(
        self, coro: Coroutine[Any, Any, None], **log_fields: str | None
    ) -> asyncio.Task[None]:
        """A guarded task: a bug in it is logged and reported, and ends only that task."""
        return self._create(self._guarded(coro), **log_fields)

    def _create(self, coro: Coroutine[Any, Any, T], **log_fields: str | None) -> asyncio.Task[T]:
        if self._tg is None:
            coro.close()
            raise RuntimeError("session is not running")
        return self._tg.create_task(coro, context=self._log_context(**log_fields))

    def _log_context(self, **fields: str | None) -> contextvars.Context:
        # The task's log records (providers' included) carry the session and turn ids.
        return log_context(session_id=self.session_id, **fields)

    async def _guarded(self, coro: Coroutine[Any, Any, None]) -> None:
        # A bug in one turn must not end the session (or, via the TaskGroup, its siblings).
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("turn failed", extra={"session_id": self.session_id})
            await self._on_failure()
