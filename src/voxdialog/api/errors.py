"""OpenAI's error shape for every non-2xx answer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

_TYPES = {
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    """An error answered as ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or ("server_error" if status >= 500 else "invalid_request_error")


def error_body(message: str, *, type: str, code: str | None, param: str | None) -> dict[str, Any]:
    """The OpenAI error body."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def install_error_handlers(app: FastAPI) -> None:
    """Replace FastAPI's ``{"detail": ...}`` bodies with OpenAI's error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(
            error_body(exc.message, type=exc.type, code=exc.code, param=exc.param),
            status_code=exc.status,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        missing = first.get("type") == "missing"
        message = (
            f"Missing required parameter: '{'.'.join(loc)}'."
            if missing
            else f"Invalid value for '{'.'.join(loc)}': {first.get('msg', 'invalid')}."
        )
        return JSONResponse(
            error_body(
                message,
                type="invalid_request_error",
                code="missing_required_parameter" if missing else "invalid_value",
                param=".".join(loc) or None,
            ),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(
            error_body(
                str(exc.detail),
                type=_TYPES.get(exc.status_code, "invalid_request_error"),
                code=code,
                param=None,
            ),
            status_code=exc.status_code,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body(
                "The server had an error processing your request.",
                type="server_error",
                code="server_error",
                param=None,
            ),
            status_code=500,
        )
