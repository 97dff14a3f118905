"""The supervisor's registry of every worker's open sessions, served over a Unix socket.

Each worker keeps one connection (``workers/directory.py``) and speaks newline-delimited JSON:
requests carry a ``req`` number and get one reply with the same number; the coordinator may
also send a worker ``{"op": "take_over", "id": ...}`` (end that session: another worker resumes
it). The caps are checked here, atomically for the whole server. A worker whose connection
drops (it crashed, or was stopped) loses its sessions at once, so its ids and its share of the
caps are free again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The longest line either side sends; a session entry is a few hundred bytes.
MAX_LINE = 64 * 1024
#: Fields of a session entry that a worker may change after claiming it.
_MUTABLE = ("state", "turns", "last_turn_ms", "agent", "agent_name")


@dataclass(eq=False)
class _Worker:
    writer: asyncio.StreamWriter
    sessions: set[str] = field(default_factory=set)

    def send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(json.dumps(message).encode() + b"\n")


@dataclass
class _Open:
    entry: dict[str, Any]
    owner: _Worker
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Coordinator:
    """The shared session registry (runs on its own event loop, see `CoordinatorThread`)."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}
        #: Takeovers waiting for the owner to let go (held: the loop keeps only weak refs).
        self._waits: set[asyncio.Task[None]] = set()

    async def serve(self, path: Path) -> asyncio.AbstractServer:
        """Listen on the Unix socket ``path`` (in an owner-only folder: only we can connect)."""
        return await asyncio.start_unix_server(self._connected, path=str(path), limit=MAX_LINE)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        worker = _Worker(writer)
        try:
            while line := await reader.readline():
                await self._handle(worker, json.loads(line))
        except (ConnectionError, ValueError, asyncio.LimitOverrunError) as e:
            log.warning("a worker's registry connection failed: %s", e)
        finally:
            for session_id in list(worker.sessions):
                self._release(worker, session_id)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _handle(self, worker: _Worker, message: dict[str, Any]) -> None:
        op, req = message.get("op"), message.get("req")
        match op:
            case "claim":
                worker.send({"req": req, "result": self._claim(worker, message)})
            case "release":
                self._release(worker, str(message["id"]))
            case "publish":
                self._publish(worker, message["entry"])
            case "take_over":
                # Waits for the owner to let go: answered from its own task.
                task = asyncio.create_task(self._take_over(worker, message))
                self._waits.add(task)
                task.add_done_callback(self._waits.discard)
            case "list":
                tenant = message.get("tenant")
                entries = [
                    o.entry for o in self._open.values() if tenant is None or o.entry["t"] == tenant
                ]
                worker.send({"req": req, "result": entries})
            case "is_open":
                worker.send({"req": req, "result": message["id"] in self._open})
            case _:
                worker.send({"req": req, "error": f"unknown op {op!r}"})

    def _claim(self, worker: _Worker, message: dict[str, Any]) -> str:
        entry = message["entry"]
        session_id = entry["id"]
        if session_id in self._open:
            return "busy"
        if len(self._open) >= int(message["limit"]):
            return "cap"
        mine = sum(1 for o in self._open.values() if o.entry["u"] == entry["u"])
        if mine >= int(message["per_user_limit"]):
            return "user_cap"
        self._open[session_id] = _Open(entry, worker)
        worker.sessions.add(session_id)
        return "ok"

    def _release(self, worker: _Worker, session_id: str) -> None:
        found = self._open.get(session_id)
        if found is None or found.owner is not worker:
            return
        del self._open[session_id]
        worker.sessions.discard(session_id)
        found.ended.set()

    def _publish(self, worker: _Worker, entry: dict[str, Any]) -> None:
        found = self._open.get(entry.get("id", ""))
        if found is not None and found.owner is worker:
            found.entry.update({k: entry[k] for k in _MUTABLE if k in entry})

    async def _take_over(self, worker: _Worker, message: dict[str, Any]) -> None:
        req, session_id = message.get("req"), str(message["id"])
        found = self._open.get(session_id)
        if found is None:
            worker.send({"req": req, "result": True})
            return
        if found.entry["u"] != message["user"]:
            worker.send({"req": req, "result": False})
            return
        found.owner.send({"op": "take_over", "id": session_id})
        try:
            async with asyncio.timeout(float(message["timeout_s"])):
                await found.ended.wait()
        except TimeoutError:
            worker.send({"req": req, "result": False})
            return
        worker.send({"req": req, "result": True})


class CoordinatorThread:
    """Runs a `Coordinator` on an event loop of its own, in a daemon thread of the supervisor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="voxdialog-registry", daemon=True)

    def start(self) -> None:
        """Start listening; returns once workers can connect.

        Raises:
            OSError: The socket cannot be created.
        """
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        """Stop the loop (the workers have gone)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self.path.unlink(missing_ok=True)
            server = loop.run_until_complete(Coordinator().serve(self.path))
        except OSError as e:
            self._failure = e
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
