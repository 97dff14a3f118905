"""Logging setup: a static message plus structured fields, as text or one JSON object a line.

Fields that identify the work in progress (``session_id``, ``turn_id``, ``response_id``) ride
on a context variable: code that starts a session's task binds them once with
``log_context()``, and every record logged inside that task carries them, including records
from providers and libraries that know nothing about sessions.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from voxdialog.observability.redact import redact

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}

_FIELDS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "voxdialog_log_fields", default=None
)


def bind_log_fields(**fields: str | None) -> None:
    """Add ``fields`` to every record logged from now on in the current context.

    Fields set to ``None`` are left out. A task gets a copy of its creator's context, so
    binding inside a task touches that task only.
    """
    bound = dict(_FIELDS.get() or {})
    bound.update({k: v for k, v in fields.items() if v is not None})
    _FIELDS.set(bound)


def log_context(**fields: str | None) -> contextvars.Context:
    """A copy of the current context whose log records also carry ``fields``.

    Pass it as ``context=`` to ``create_task`` so the task's records are labelled without the
    caller's context changing.
    """
    context = contextvars.copy_context()
    context.run(bind_log_fields, **fields)
    return context


class ContextFieldsFilter(logging.Filter):
    """Copies the bound context fields onto each record (explicit ``extra=`` values win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Label ``record``; never rejects one."""
        for key, value in (_FIELDS.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, then every structured field.

    Credentials found anywhere in the line are replaced (`redact`).
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line, credentials replaced."""
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        # The last step, so the message, its fields and any traceback are all covered.
        return redact(line)


def make_log_handler(stream: TextIO, *, json_lines: bool = False) -> logging.Handler:
    """A handler writing to ``stream``, as text or JSON lines, with the context fields.

    Every line it writes has its credentials replaced (`voxdialog.observability.redact`).
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(ContextFieldsFilter())
    return handler


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """Send logs to stderr, as text or JSON lines."""
    root = logging.getLogger()
    root.handlers[:] = [make_log_handler(sys.stderr, json_lines=json_lines)]
    root.setLevel(level.upper())
    # Libraries that narrate every step at INFO: keep their warnings only.
    for noisy in ("alembic", "faster_whisper", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's access lines carry raw query strings; `access_log.AccessLog` writes ours.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
