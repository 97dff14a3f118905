"""Credentials never reach a log line: the patterns that find them and what replaces them.

Two layers use this module. The access log (`access_log.py`) drops the values of secret query
parameters when it writes a path. Every log handler (`logging.py`) runs its formatted line
through `redact`, so a credential that slips into a library's message (uvicorn writes the
WebSocket path with its query string) or an exception text is cut out before it is written.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

REDACTED = "[redacted]"

#: Query, form and field names whose values are credentials (compared case-insensitively).
SECRET_NAMES = frozenset(
    {
        "token",
        "ticket",
        "key",
        "api_key",
        "apikey",
        "api-key",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "new_password",
        "current_password",
        "secret",
        "client_secret",
        "authorization",
        "signature",
        "sig",
    }
)
#: In a URL, an OAuth-style ``code`` is a credential too; in log text ``code=`` names an error.
QUERY_SECRET_NAMES = SECRET_NAMES | {"code"}

# Names as a regex alternation, longest first so "access_token" wins over "token".
_NAMES = "|".join(sorted((re.escape(n) for n in SECRET_NAMES), key=len, reverse=True))
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # name=value in a query string, a form body or a text log's key=value fields (the value
    # stops before a backslash so an escaped quote of a JSON line stays intact).
    (re.compile(rf"(?i)(?<![\w-])({_NAMES})=([^&\s\"',;\\]+)"), rf"\1={REDACTED}"),
    # "name": "value" in JSON (a logged body or a JSON log line's fields).
    (re.compile(rf'(?i)("(?:{_NAMES})"\s*:\s*")((?:[^"\\]|\\.)*)(")'), rf"\1{REDACTED}\3"),
    # An Authorization header value.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    # The browser's way to pass a key: a WebSocket subprotocol.
    (re.compile(r"(openai-insecure-api-key\.)[^\s,\"']+"), rf"\1{REDACTED}"),
    # A JWT anywhere (access, refresh or WebSocket ticket): header.payload.signature.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # A VoxDialog API key anywhere (db/repos/api_keys.py: "vxd_" + 40 url-safe characters).
    (re.compile(r"\bvxd_[A-Za-z0-9_-]{16,}"), f"vxd_{REDACTED}"),
)


def redact(text: str) -> str:
    """``text`` with every credential it seems to hold replaced by ``[redacted]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redacted_query(query: str) -> str:
    """A query string with the values of secret parameters replaced (the names are kept)."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, REDACTED if k.casefold() in QUERY_SECRET_NAMES else redact(v)) for k, v in pairs]
    return urlencode(kept, safe="[]")
