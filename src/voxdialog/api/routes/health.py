"""Liveness, readiness and the Prometheus metrics (for operators and the metrics token)."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from voxdialog.api.deps import RuntimeDep, bearer
from voxdialog.api.errors import ApiError
from voxdialog.observability.snapshot import providers_snapshot
from voxdialog.runtime import Runtime
from voxdialog.security.ratelimit import RateLimiterUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(runtime: RuntimeDep) -> dict[str, str | int]:
    """The process is alive; ``worker`` is which worker answered (0: the server runs alone)."""
    return {"status": "ok", "worker": runtime.worker_index}


@router.get(
    "/metrics",
    response_model=None,
    responses={401: {"description": "No credential"}, 403: {"description": "Not an operator"}},
)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus text format, for the configured metrics token or an operator's credential.

    The figures are process-wide (every tenant's sessions and turns), so neither the public
    nor a tenant admin may read them; a proxy on the same host makes "loopback only" no guard.
    With several workers the other figures are those of the worker that answers, but
    ``voxdialog_active_sessions`` counts every worker's sessions (what an autoscaler reads).
    """
    await _check_scraper(bearer(request), runtime)
    await runtime.sessions.count_every_worker()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _check_scraper(credential: str | None, runtime: Runtime) -> None:
    token = runtime.settings.metrics_token
    if (
        credential is not None
        and token is not None
        and hmac.compare_digest(credential.encode(), token.get_secret_value().encode())
    ):
        return
    principal = await runtime.authenticate(credential)
    if principal is None:
        raise ApiError(
            401,
            "Send the metrics token or an operator's API key as a bearer credential.",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not (principal.is_admin and principal.operator):
        raise ApiError(403, "Metrics are for the server's operators.", code="forbidden")


@router.get("/readyz", response_model=None)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when the database and the shared cache answer and the local models are loaded.

    The checks also show each stage's provider and every fallback chain's members with their
    circuit breakers (``closed``, ``open``, ``half_open``): an open breaker does not make the
    server unready (the chain answers with the next provider) but is reported as degraded.
    """
    checks: dict[str, Any] = {"database": await _database(runtime), "cache": await _cache(runtime)}
    stages = {"vad": runtime.vad, "stt": runtime.stt, "tts": runtime.tts}
    for stage, provider in stages.items():
        checks[stage] = provider.info.name if provider is not None else "not loaded"
    checks["llm"] = runtime.llm.info.name if runtime.llm is not None else "built-in assistant"
    chains = providers_snapshot(runtime.assembly.chains, {}).chains
    checks["providers"] = {
        chain.name: {
            "stage": chain.stage,
            "available": chain.available,
            "breakers": {member.name: member.breaker for member in chain.providers},
        }
        for chain in chains
    }
    checks["sessions"] = len(runtime.sessions.active)
    ready = (
        checks["database"] == "ok"
        and not str(checks["cache"]).startswith("error")
        and all(p is not None for p in stages.values())
    )
    degraded = any(
        breaker != "closed"
        for chain in checks["providers"].values()
        for breaker in chain["breakers"].values()
    )
    status = "not_ready" if not ready else "degraded" if degraded else "ready"
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ready else 503)


async def _database(runtime: Runtime) -> str:
    try:
        async with runtime.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as e:
        return f"error: {type(e).__name__}"
    return "ok"


async def _cache(runtime: Runtime) -> str:
    """Where rate limits and spent tickets live: ``memory``, ``redis``, or the error."""
    try:
        return await runtime.limiter.ping()
    except RateLimiterUnavailable:
        return "error: redis unreachable"
