"""The ``/v1/realtime`` WebSocket endpoint: admission, then the connection's loops."""

from __future__ import annotations

import json

from fastapi import WebSocket

from voxdialog.pipeline.ids import new_id
from voxdialog.realtime.admission import Refusal, admit, credential, origin_allowed
from voxdialog.realtime.connection import RealtimeConnection
from voxdialog.realtime.errors import error_event
from voxdialog.runtime import Runtime

# While the server drains (SIGTERM): 1013, try again later (on a restarted server).
_SHUTTING_DOWN = Refusal(
    "server_shutting_down", "The server is shutting down; try again shortly.", 1013, "server_error"
)


async def realtime_endpoint(ws: WebSocket, runtime: Runtime) -> None:
    """Serve one Realtime connection: check origin and credential, bind user and agent."""
    if not origin_allowed(ws, runtime.settings.auth.allowed_origins):
        # Refused before the upgrade: the browser sees a failed handshake (HTTP 403).
        await ws.close(code=1008)
        return
    key, subprotocol = credential(ws)
    if runtime.sessions.draining:
        await _refuse(ws, subprotocol, _SHUTTING_DOWN)
        return
    admission = await admit(ws, runtime, key)
    if isinstance(admission, Refusal):
        await _refuse(ws, subprotocol, admission)
        return
    try:
        await ws.accept(subprotocol=subprotocol)
        await RealtimeConnection(ws, runtime, admission).serve()
    finally:
        runtime.sessions.remove(admission.session_id)


async def _refuse(ws: WebSocket, subprotocol: str | None, refusal: Refusal) -> None:
    # Like the hosted service: complete the upgrade, send one error, then close.
    await ws.accept(subprotocol=subprotocol)
    event = error_event(refusal.code, refusal.message, type=refusal.error_type)
    await ws.send_text(json.dumps({"event_id": new_id("event"), **event}))
    reason = f"{refusal.error_type}.{refusal.code}"[:120]
    await ws.close(code=refusal.close_code, reason=reason)
