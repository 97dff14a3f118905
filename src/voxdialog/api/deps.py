"""Typed dependencies for routes: the runtime and the caller's scope."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request

from voxdialog.api.errors import ApiError
from voxdialog.brain.base import Scope
from voxdialog.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """The process runtime (set by the app's lifespan)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer(request: Request) -> str | None:
    """The bearer credential of a request, if any."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


async def get_scope(request: Request, runtime: RuntimeDep) -> Scope:
    """The caller's scope from an API key (or page token); 401 otherwise."""
    scope = await runtime.authenticate(bearer(request))
    if scope is None:
        raise ApiError(
            401,
            "Incorrect API key provided." if bearer(request) else "You didn't provide an API key.",
            code="invalid_api_key",
        )
    return scope


ScopeDep = Annotated[Scope, Depends(get_scope)]


def is_loopback(request: Request) -> bool:
    """Whether the request comes from this machine."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")
