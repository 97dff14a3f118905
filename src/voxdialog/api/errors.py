"""OpenAI's error shape for every non-2xx answer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from voxdialog.db.sealing import SealedDataError

_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
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


def _is_union_tag(part: str) -> bool:
    return "[" in part or part in ("none", "null")


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
        # Union members add tags such as "function-after[...]" to the location: not a field.
        loc = [
            str(p)
            for p in first.get("loc", ())
            if p not in ("body", "query", "path") and not _is_union_tag(str(p))
        ]
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
            headers=_with_allow(request, exc.headers),
        )

    @app.exception_handler(SealedDataError)
    async def _sealed(request: Request, exc: SealedDataError) -> JSONResponse:
        # Tampered or unreadable ciphertext: say so, never return garbage.
        return JSONResponse(
            error_body(
                "Stored data failed its integrity check and cannot be shown.",
                type="server_error",
                code="stored_data_unreadable",
                param=None,
            ),
            status_code=500,
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


def _with_allow(request: Request, headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """A router's 405 names the methods of the one route it tried; ``Allow`` must list every
    method the path supports (RFC 9110 section 10.2.1), whichever route serves it."""
    if not headers or "Allow" not in headers:
        return headers
    named = {method.strip() for method in headers["Allow"].split(",")}
    routes = request.app.router.routes
    allowed = [
        method
        for method in _HTTP_METHODS
        if method in named
        or any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    return {**headers, "Allow": ", ".join(allowed)}


#: What any operation under ``/api`` or ``/v1`` may answer, whatever the route: the request
#: guard refuses big bodies (413) and busy clients (429), the validation handler answers 400.
_COMMON_ERRORS = {
    "400": "Invalid request",
    "401": "Missing or invalid credential",
    "403": "Not allowed",
    "404": "Not found",
    "413": "Request body too large",
    "429": "Too many requests",
}
#: Operations under ``/api`` and ``/v1`` that need no bearer credential. Every other one is
#: documented as needing it, so a route that forgets to check it fails the API fuzz tests.
PUBLIC_PATHS = frozenset(
    {"/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/local"}
)
#: A bearer is optional here: without one, only a same-origin page on this machine gets in.
OPTIONAL_AUTH_PATHS = frozenset({"/api/realtime-token"})
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "description": "OpenAI's error shape, answered for every 4xx and 5xx.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (vxd_...) or an access token from /api/auth/login.",
}


def document_errors(app: FastAPI) -> None:
    """Make ``/openapi.json`` describe the error answers and the credential the API really uses.

    Every error status is documented with the OpenAI error schema (FastAPI's 422 is dropped:
    validation errors are answered 400), and every operation under ``/api`` and ``/v1``
    declares the bearer scheme unless it is in :data:`PUBLIC_PATHS`.

    Args:
        app: The application.
    """
    build_schema = app.openapi
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = build_schema()
        # FastAPI rebuilds its schema when routes change; document each build once.
        if not documented or documented[0] is not schema:
            _document(schema)
            documented[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    components.setdefault("securitySchemes", {})["bearer"] = _BEARER
    for path, operations in schema.get("paths", {}).items():
        api = path.startswith(("/api/", "/v1/"))
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            if api:
                for status, description in _COMMON_ERRORS.items():
                    responses.setdefault(status, {"description": description})
                operation["security"] = _security(path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = _ERROR_CONTENT
    # FastAPI's own validation-error schemas describe answers this app never gives.
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in json.dumps(schema):
            components["schemas"].pop(unused, None)


def _security(path: str) -> list[dict[str, list[str]]]:
    if path in PUBLIC_PATHS:
        return []
    if path in OPTIONAL_AUTH_PATHS:
        return [{"bearer": []}, {}]
    return [{"bearer": []}]
