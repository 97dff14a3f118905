"""``POST /api/realtime-token``: a short-lived token for the talk page's WebSocket."""

from __future__ import annotations

from fastapi import APIRouter, Request

from voxdialog.api.deps import RuntimeDep, bearer, is_loopback
from voxdialog.api.errors import ApiError

router = APIRouter(prefix="/api", tags=["auth"])
TOKEN_TTL_S = 300


@router.post("/realtime-token")
async def realtime_token(request: Request, runtime: RuntimeDep) -> dict[str, object]:
    """A token for ``/v1/realtime``.

    With a bearer key the token is the key owner's. Without one, only a page opened on this
    machine gets one (as the local admin): offline use on localhost needs no sign-up.
    """
    scope = await runtime.authenticate(bearer(request), allow_token=False)
    if scope is None and bearer(request) is None and is_loopback(request):
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        # A page on another site must not mint tokens through the user's browser.
        if origin is None or origin.split("://", 1)[-1] == host:
            scope = runtime.local_scope
    if scope is None or runtime.signer is None:
        raise ApiError(401, "An API key is required.", code="invalid_api_key")
    token = runtime.signer.issue(scope, typ="realtime", ttl_s=TOKEN_TTL_S)
    return {"token": token, "expires_in": TOKEN_TTL_S}
