"""Which ``VOXDIALOG_*`` environment variables name a setting, and the closest one that does.

pydantic-settings reads only the variables of known fields, so a misspelt one is silently
ignored; these helpers let ``Settings`` refuse it instead.
"""

from __future__ import annotations

import difflib
import os
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

ENV_PREFIX = "VOXDIALOG_"
#: ``VOXDIALOG_*`` variables that are not settings but that the project reads or documents.
NON_SETTING_ENV: frozenset[str] = frozenset(
    {"VOXDIALOG_TEST_POSTGRES_URL", "VOXDIALOG_TEST_REDIS_URL", "VOXDIALOG_WORKER_INDEX"}
)


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """``environ[name]``, matched without regard to case (as pydantic-settings does)."""
    return next((v for k, v in environ.items() if k.upper() == name), None)


def config_file(init_kwargs: Mapping[str, Any]) -> Path:
    """The TOML file to read: ``Settings(config=...)``, else ``VOXDIALOG_CONFIG``, else ./."""
    chosen = init_kwargs.get("config") or env_value(os.environ, "VOXDIALOG_CONFIG")
    if chosen is None:
        return Path("voxdialog.toml")
    path = Path(chosen)
    # A missing file is reported by the ``config`` field's validator; read nothing meanwhile.
    return path if path.is_file() else Path(os.devnull, "absent.toml")


def field_at(model: type[BaseModel], path: Sequence[str]) -> FieldInfo | None:
    """The field of ``model`` at ``path`` (field names; any key inside a dict field)."""
    field: FieldInfo | None = None
    annotation: Any = model
    for part in path:
        annotation = _without_none(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]  # ``providers__NAME__...``: any NAME
        else:
            return None
    return field


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def env_names(model: type[BaseModel]) -> list[str]:
    """Every setting's variable, the fields of nested groups included."""
    names: list[str] = []

    def walk(inner: type[BaseModel], prefix: str) -> None:
        for name, field in inner.model_fields.items():
            names.append(f"{prefix}{name.upper()}")
            annotation = _without_none(field.annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name.upper()}__")

    walk(model, ENV_PREFIX)
    return names


def unknown_variables(model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """One problem per ``VOXDIALOG_*`` variable naming no field of ``model``, with a hint."""
    problems: list[str] = []
    for key in sorted(environ):
        name = key.upper()
        if not name.startswith(ENV_PREFIX) or name in NON_SETTING_ENV:
            continue
        if field_at(model, name.removeprefix(ENV_PREFIX).lower().split("__")) is not None:
            continue
        # Compared without the prefix they all share, which would make any two names close.
        known = [known.removeprefix(ENV_PREFIX) for known in env_names(model)]
        close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), known, n=1, cutoff=0.75)
        hint = f" (did you mean {ENV_PREFIX}{close[0]}?)" if close else ""
        problems.append(f"{key}: not a setting{hint}")
    return problems
