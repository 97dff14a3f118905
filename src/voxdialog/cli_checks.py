"""What the ``voxdialog`` command checks before it does any work: its arguments and settings.

Each mistake becomes one line that names the option or variable (a ``UsageError``, exit 2).
Nothing here loads a model: a typo must be reported in well under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from voxdialog.audio.errors import AudioError
from voxdialog.audio.formats import AudioChunk
from voxdialog.settings import LimitSettings, Settings, SettingsFileError, unknown_environment
from voxdialog.settings_env import ENV_PREFIX, env_value, field_at

#: ``voxdialog say --speed``: the range of ``/v1/audio/speech`` (and of Piper's clamp).
SPEED_RANGE = (0.25, 4.0)
_NUMBER_ERRORS = frozenset(
    {
        "int_parsing",
        "int_type",
        "int_from_float",
        "float_parsing",
        "float_type",
        "finite_number",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
    }
)


class UsageError(Exception):
    """A mistake in the command line or the settings: one line per problem, exit code 2."""

    def __init__(self, *problems: str) -> None:
        """Hold ``problems``, each a line naming what is wrong (and the option or variable)."""
        super().__init__("; ".join(problems))
        self.problems = problems


# --- argument types (argparse reports their errors as "argument --x: ...") -------------------


def _integer_in(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be an integer {low}-{high}")
    return value


def port(text: str) -> int:
    """A TCP port, 1-65535."""
    return _integer_in(text, 1, 65535)


def workers(text: str) -> int:
    """A worker process count, 1-64."""
    return _integer_in(text, 1, 64)


def existing_file(text: str) -> Path:
    """A path to a readable file (a certificate or key)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def speed(text: str) -> float:
    """A speaking rate in ``SPEED_RANGE`` (1.0 = normal); NaN is out of every range."""
    low, high = SPEED_RANGE
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be a number {low:g}-{high:g}")
    return value


def audio_input(text: str) -> Path:
    """An existing, readable, non-empty file (whether it is audio is known once decoded)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not an audio file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {text}: permission denied")
    if path.stat().st_size == 0:
        raise argparse.ArgumentTypeError(f"{text} is empty (0 bytes)")
    return path


def audio_output(text: str) -> Path:
    """A file to write audio to, in a format its extension names (none: WAV)."""
    from voxdialog.audio.codecs import CONTENT_TYPES, StreamEncoder

    path = Path(text)
    fmt = output_format(path)
    if fmt not in CONTENT_TYPES:
        known = ", ".join(f".{name}" for name in CONTENT_TYPES)
        raise argparse.ArgumentTypeError(f"cannot write .{fmt} audio (use {known})")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {path.parent}")
    try:  # this FFmpeg build may lack the encoder: find out before minutes of work
        StreamEncoder(fmt, sample_rate=16_000).close()
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return path


def output_format(path: Path) -> str:
    """The audio format ``path``'s extension names; WAV without one."""
    return path.suffix.lstrip(".").lower() or "wav"


async def read_audio(path: Path, limits: LimitSettings) -> AudioChunk:
    """The decoded file, or a ``UsageError`` naming it (not audio, too long, no audio in it)."""
    from voxdialog.audio.codecs import decode_file

    data = await asyncio.to_thread(path.read_bytes)
    try:
        return await asyncio.to_thread(
            decode_file,
            data,
            max_bytes=limits.max_upload_bytes,
            max_seconds=limits.max_upload_seconds,
        )
    except AudioError as e:
        raise UsageError(f"{path}: {e}") from None


def config_path(text: str) -> Path:
    """An existing TOML file."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


# --- settings ---------------------------------------------------------------------------------


def load_settings(options: Mapping[str, Any]) -> Settings:
    """``Settings(**options)``, or a ``UsageError`` with one line per problem.

    Args:
        options: the settings given on the command line (``port``, ``data_dir``, ``config``...).
    """
    try:
        return Settings(**options)
    except SettingsFileError as e:
        raise UsageError(str(e)) from None
    except ValidationError as e:
        raise UsageError(*settings_problems(e, os.environ, options)) from None


def settings_problems(
    error: ValidationError, environ: Mapping[str, str], options: Mapping[str, Any]
) -> list[str]:
    """One line per problem, naming where the value came from: option, variable or file."""
    lines: list[str] = []
    for detail in error.errors(include_url=False, include_input=False):
        loc = tuple(str(part) for part in detail["loc"])
        if not loc:  # the check of the variable names: one problem per variable
            lines.extend(unknown_environment(environ) or [_message(detail, None)])
            continue
        lines.append(
            f"{_source(loc, environ, options)}: {_message(detail, field_at(Settings, loc))}"
        )
    return lines


def _source(loc: Sequence[str], environ: Mapping[str, str], options: Mapping[str, Any]) -> str:
    if len(loc) == 1 and loc[0] in options:
        return "--" + loc[0].replace("_", "-")
    for end in range(len(loc), 0, -1):  # VOXDIALOG_TURNS='{...}' holds turns.x as well
        name = ENV_PREFIX + "__".join(part.upper() for part in loc[:end])
        if env_value(environ, name) is not None:
            return name
    config = options.get("config") or env_value(environ, "VOXDIALOG_CONFIG") or "voxdialog.toml"
    return f"{config}: {'.'.join(loc)}"


def _message(detail: ErrorDetails, field: FieldInfo | None) -> str:
    kind = detail["type"]
    if kind in _NUMBER_ERRORS and field is not None:
        return f"must be {_number_range(field)}"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind == "extra_forbidden":
        return "not a setting"
    message = detail["msg"].removeprefix("Value error, ")
    if message.startswith("Input should be"):
        return "must be" + message.removeprefix("Input should be")
    return message


def _number_range(field: FieldInfo) -> str:
    kind = "an integer" if field.annotation is int else "a number"
    bounds: dict[str, float] = {}
    for meta in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(meta, getattr(annotated_types, name.title())):
                bounds[name] = getattr(meta, name)
    low, high = bounds.get("ge"), bounds.get("le")
    if low is not None and high is not None:
        return f"{kind} {_num(low)}-{_num(high)}"
    words = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}
    said = [f"{words[name]} {_num(value)}" for name, value in bounds.items()]
    return " ".join([kind, ", ".join(said)]) if said else kind


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
